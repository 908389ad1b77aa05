# What an `LsmEqualityIndex` costs per shape (issue 14; DESIGN.md, "The filter"): N shapes
# (default 1,000,000) of one key each, added one by one as the filter adds them, then
#   * BEAM B/shape: the struct's own size (`:erts_debug.flat_size/1` x word size: what the
#     filter's process keeps for this index, keys excluded: they live in Rust; `size/1`,
#     which also finds shared subterms, takes minutes on a map of 1M entries);
#   * BEAM allocated: growth of `:erlang.memory(:total)` (the struct in its process heap,
#     with the heap's slack);
#   * resident: VmRSS growth of the VM (the NIF's Rust heap and the BEAM's), once the index
#     is compacted and idle and every process garbage collected: it includes what the
#     allocators kept of the build's transient memory (overlays, old heaps);
#   * keys: the bytes the index counts for its keys (segments + MPH + overlays), the same
#     whatever the per-shape state; handle counts: its per-handle key counts, when it keeps
#     them (`LsmIndex.stats/1`'s `:handle_count_bytes`).
# Shape ids: `dense` (default: integers 0..N-1, their own handles, no residuals — the common
# case), `sparse` (distinct integers scattered over 0..2^31-1) or `strings` (interned).
#   mix run bench/filter_memory.exs [N] [dense|sparse|strings]
alias LsmIndex.Filter.LsmEqualityIndex
alias LsmIndex.Filter.Index.Protocol, as: Index

{n, ids} =
  case System.argv() do
    [] -> {1_000_000, "dense"}
    [n] -> {String.to_integer(n), "dense"}
    [n, ids | _] -> {String.to_integer(n), ids}
  end

shape_id =
  case ids do
    "dense" -> fn i -> i end
    # an odd multiplier is a bijection of 0..2^31-1: distinct ids, far apart
    "sparse" -> fn i -> rem(i * 2_654_435_761, 2_147_483_648) end
    "strings" -> fn i -> "shape-#{i}" end
  end

# {VmRSS, the BEAM's own accounting}, every process garbage collected
measure = fn ->
  for p <- Process.list(), do: :erlang.garbage_collect(p)
  Process.sleep(500)
  [_, kb] = Regex.run(~r/VmRSS:\s+(\d+) kB/, File.read!("/proc/self/status"))
  {String.to_integer(kb) * 1024, :erlang.memory(:total)}
end

IO.puts(
  "machine: #{:erlang.system_info(:logical_processors)} cores; OTP #{System.otp_release()}, " <>
    "Elixir #{System.version()}; #{DateTime.utc_now() |> DateTime.truncate(:second)}; " <>
    "#{n} shapes, #{ids} ids, one key each"
)

# code loaded, NIF and compaction pool started before the baseline
warm = Index.add_shape(LsmEqualityIndex.new(), "warm", 0, nil)
true = Index.candidates(warm, "warm") == [{0, nil}]
before = measure.()

{micros, idx} =
  :timer.tc(fn ->
    Enum.reduce(0..(n - 1), LsmEqualityIndex.new(), fn i, idx ->
      Index.add_shape(idx, <<i::64>>, shape_id.(i), nil)
    end)
  end)

:ok = LsmIndex.compact(idx.index)
:ok = LsmIndex.wait_idle(idx.index)
after_ = measure.()
stats = LsmIndex.stats(idx.index)
beam = :erts_debug.flat_size(idx) * :erlang.system_info(:wordsize)
keys = stats.segment_bytes + stats.mph_heap_bytes + stats.overlay_bytes
{rss, allocated} = {elem(after_, 0) - elem(before, 0), elem(after_, 1) - elem(before, 1)}
# the index's per-handle key counts (Rust), once it keeps them
counts = Map.get(stats, :handle_count_bytes, 0)
per = fn bytes -> Float.round(bytes / n, 1) end
last = n - 1
true = Index.candidates(idx, <<last::64>>) == [{shape_id.(last), nil}]

IO.puts("""
| shapes | ids | BEAM struct | BEAM allocated | resident | keys (Rust, counted) | handle counts (Rust) | build s |
|---|---|---|---|---|---|---|---|
| #{n} | #{ids} | #{per.(beam)} | #{per.(allocated)} | #{per.(rss)} | #{per.(keys)} | \
#{per.(counts)} | #{Float.round(micros / 1.0e6, 1)} |

(bytes per shape)
""")
