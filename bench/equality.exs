defmodule LsmIndex.Bench.Equality do
  @moduledoc """
  `mix bench`: the map `EqualityIndex`, an ETS `:set`, a raw `LsmIndex` (in memory, and
  persistent: opened in a temporary directory, segments mapped from files) and an
  `LsmEqualityIndex` over the same keys, measured in one run.

  Keys are integers (like `user_id` values). Workloads: `single` (one shape per key, shape id =
  key number) and `mixed` (every fifth key has a second shape: 1.2 shapes per key). Each
  structure is built and measured in its own process, which exits before the next starts, so
  memory deltas are its own.

  Columns:
    * RSS Δ B/key - the headline: growth of the VM's resident memory (`VmRSS`) over the
      structure's build, after garbage collection and, for the LSM rows, compaction, 
      `wait_idle/1` and 1 s idle; per key
    * B/key - the structure's own size as built (before the churn phases), counted: term size
      (`:erts_debug.flat_size/1`) for maps, ETS table memory, Rust bytes from
      `LsmIndex.stats/1` (segments + MPH + overlays + per-handle key counts) plus the BEAM term of the struct for
      `LsmEqualityIndex`
    * peak RSS MB - the VM's resident high-water mark (`VmHWM`, reset before each build)
      during the build, over the baseline
    * build - inserting every (key, shape) pair one call at a time (`LsmIndex`: batches of
      10,000 through `add_many/2`), then for the LSM rows a full `compact/1`
    * hit / miss - one lookup, in ns: p50 and p99 over samples of 8 consecutive random keys
      timed together (the timer's cost, printed in the header, is spread over the 8); for the
      two `Index.Protocol` indexes, `candidates/2` (the shapes with their residuals, which
      `LsmIndex.Filter` then evaluates in Rust for all of a record's candidates at once)
    * txn 10 / txn 100 - the keys of a transaction of 10 / 100 rows: one `lookup_many` call for
      the LSM rows, a loop of lookups otherwise; p50 in µs per transaction. Below the table,
      the LSM rows' transactions of 10 / 100 / 256 keys per key, list and packed forms side
      by side, against the ETS hit (`bench/equality_txn.exs`)
    * churn - add + remove of fresh pairs, single calls, ops/s; `batch churn` uses batches of
      1,000 (`add_many`/`remove_many`, ETS `insert/2` with a list + deletes)

  RSS figures are noisy (even negative) below 1M keys: the VM's allocators keep and reuse
  freed carriers.
  """

  import LsmIndex.Bench.Report,
    only: [progress: 1, fmt_f: 2, fmt_int: 1, markdown: 2, in_process: 1, stable_memory: 0]

  alias LsmIndex.Filter.{EqualityIndex, LsmEqualityIndex}
  alias LsmIndex.Filter.Index.Protocol, as: Index

  @per_sample 8

  def run(opts) do
    sizes = Keyword.fetch!(opts, :sizes)
    quick = Keyword.fetch!(opts, :quick)
    samples = if quick, do: 40_000, else: 400_000
    machine = machine()
    header = "# mix bench#{if quick, do: " --quick", else: ""}: equality indexes side by side\n"
    IO.puts(header <> "\n" <> machine)

    tables =
      for n <- sizes, workload <- [:single, :mixed] do
        table = bench(n, workload, samples, quick)
        IO.puts(table)
        table
      end

    file = Path.join("bench/results", if(quick, do: "equality-quick.md", else: "equality.md"))
    File.mkdir_p!(Path.dirname(file))
    text = Enum.join([header, machine | tables], "\n")
    File.write!(file, text <> LsmIndex.Bench.Plots.section(:equality, Path.rootname(file), text))
    IO.puts("written to #{file}")
  end

  @doc false
  def machine do
    cpu =
      case File.read("/proc/cpuinfo") do
        {:ok, text} ->
          Regex.run(~r/model name\s*:\s*(.*)/, text, capture: :all_but_first) |> List.wrap()

        _ ->
          []
      end

    """
    machine: #{:erlang.system_info(:logical_processors)} cores, #{Enum.at(cpu, 0, "unknown CPU")}, \
    #{div(total_memory(), 1024 * 1024 * 1024)} GiB; OTP #{System.otp_release()}, \
    Elixir #{System.version()}; #{DateTime.utc_now() |> DateTime.truncate(:second)}
    timer cost: #{timer_cost()} ns per sample of #{@per_sample} calls (included in hit/miss)
    """
  end

  defp total_memory do
    with {:ok, text} <- File.read("/proc/meminfo"),
         [kb] <- Regex.run(~r/MemTotal:\s*(\d+)/, text, capture: :all_but_first) do
      String.to_integer(kb) * 1024
    else
      _ -> 0
    end
  end

  defp timer_cost do
    times = for _ <- 1..100_000, do: time(fn -> :ok end)
    percentile(Enum.sort(times), 0.5)
  end

  # -- one table: every structure over the same n keys --

  defp bench(n, workload, samples, quick) do
    pairs_per_key = if workload == :single, do: 1.0, else: 1.2
    title = "## #{fmt_int(n)} keys, #{workload} (#{pairs_per_key} shapes per key)"
    progress("#{title}")

    rows =
      for kind <- [:map, :ets, :lsm_raw, :lsm_disk, :lsm_eq] do
        in_process(fn -> measure(kind, n, workload, samples, quick) end)
      end

    columns = [
      "structure",
      "RSS Δ B/key",
      "B/key",
      "peak RSS MB",
      "build s",
      "hit p50 ns",
      "hit p99 ns",
      "miss p50 ns",
      "miss p99 ns",
      "txn10 µs",
      "txn100 µs",
      "churn ops/s",
      "batch churn ops/s"
    ]

    lines =
      for r <- rows do
        [
          r.name,
          fmt_f(r.rss_bytes / n, 1),
          fmt_f(r.bytes / n, 1),
          fmt_f(r.peak_rss / 1_048_576, 0),
          fmt_f(r.build_s, 2),
          r.hit_p50,
          r.hit_p99,
          r.miss_p50,
          r.miss_p99,
          fmt_f(r.txn10 / 1000, 1),
          fmt_f(r.txn100 / 1000, 1),
          fmt_int(r.churn),
          if(r.batch_churn, do: fmt_int(r.batch_churn), else: "–")
        ]
      end

    notes = for r <- rows, r.note != nil, do: "- #{r.name}: #{r.note}"
    ets_hit = Enum.find(rows, &(&1.name == "ETS :set")).hit_p50
    per_key = for r <- rows, r.txn_per_key != [], do: {r.name, r.txn_per_key}
    per_key = LsmIndex.Bench.EqualityTxn.table(per_key, ets_hit)
    Enum.join([title, "", markdown(columns, lines) | notes] ++ ["", per_key], "\n") <> "\n"
  end

  defp key(i), do: i * 3 + 1
  defp miss_key(i), do: i * 3 + 2

  defp shapes_of(i, _n, :single), do: [i]
  defp shapes_of(i, n, :mixed), do: if(rem(i, 5) == 0, do: [i, n + i], else: [i])

  defp measure(kind, n, workload, samples, quick) do
    name =
      Map.fetch!(
        %{
          map: "EqualityIndex (map)",
          ets: "ETS :set",
          lsm_raw: "LsmIndex (NIF)",
          lsm_disk: "LsmIndex (NIF, persistent)",
          lsm_eq: "LsmEqualityIndex"
        },
        kind
      )

    progress("  #{name}: building")
    # the previous structure's process is gone, but the VM returns its memory over seconds:
    # a baseline taken before RSS holds still makes the next growth read too low
    settle_memory()
    rss0 = stable_memory().rss
    reset_peak_rss()
    {build_us, s} = :timer.tc(fn -> build(kind, n, workload) end)
    peak_rss = peak_rss() - rss0
    settle_built(kind, s)
    rss_bytes = rss() - rss0
    progress("  #{name}: built in #{fmt_f(build_us / 1.0e6, 2)} s; measuring")

    # the persistent index answers through the same calls as the in-memory one
    ops = if kind == :lsm_disk, do: :lsm_raw, else: kind
    # sizes as built, before the churn phases leave tombstones behind
    {bytes, note} = {bytes(ops, s), note(ops, s)}
    hits = for _ <- 1..samples, do: key(:rand.uniform(n) - 1)
    misses = for _ <- 1..samples, do: miss_key(:rand.uniform(n) - 1)
    one = lookup_fun(ops, s)
    assert_sane(ops, s, n, workload)
    {hit_p50, hit_p99} = latency(one, hits)
    {miss_p50, miss_p99} = latency(one, misses)
    txns = if quick, do: 500, else: 5_000
    txn10 = txn_latency(ops, s, n, 10, txns)
    txn100 = txn_latency(ops, s, n, 100, txns)
    txn_per_key = LsmIndex.Bench.EqualityTxn.measure(ops, s, n, &key/1, txns)
    churn_ops = if quick, do: 20_000, else: 200_000
    {churn, s} = churn(ops, s, n, churn_ops)
    {batch_churn, s} = batch_churn(ops, s, n, churn_ops)
    release(kind, s)

    %{
      name: name,
      build_s: build_us / 1.0e6,
      hit_p50: hit_p50,
      hit_p99: hit_p99,
      miss_p50: miss_p50,
      miss_p99: miss_p99,
      txn10: txn10,
      txn100: txn100,
      txn_per_key: txn_per_key,
      churn: churn,
      batch_churn: batch_churn,
      bytes: bytes,
      rss_bytes: rss_bytes,
      peak_rss: peak_rss,
      note: note
    }
  end

  # -- building --

  defp build(:map, n, workload) do
    Enum.reduce(0..(n - 1), EqualityIndex.new(), fn i, idx ->
      maybe_progress(i, n)
      Enum.reduce(shapes_of(i, n, workload), idx, &Index.add_shape(&2, key(i), &1, nil))
    end)
  end

  defp build(:ets, n, workload) do
    t = :ets.new(:bench, [:set, :public, read_concurrency: true])

    for i <- 0..(n - 1) do
      maybe_progress(i, n)
      :ets.insert(t, {key(i), shapes_of(i, n, workload)})
    end

    t
  end

  defp build(kind, n, workload) when kind in [:lsm_raw, :lsm_disk] do
    {:ok, idx} =
      if kind == :lsm_disk,
        do: File.rm_rf!(disk_dir()) && LsmIndex.open(disk_dir()),
        else: LsmIndex.new()

    0..(n - 1)
    |> Stream.chunk_every(10_000)
    |> Enum.each(fn chunk ->
      maybe_progress(hd(chunk), n, 10_000)

      :ok =
        LsmIndex.add_many(idx, for(i <- chunk, s <- shapes_of(i, n, workload), do: {key(i), s}))
    end)

    :ok = LsmIndex.compact(idx)
    idx
  end

  defp build(:lsm_eq, n, workload) do
    idx =
      Enum.reduce(0..(n - 1), LsmEqualityIndex.new(), fn i, idx ->
        maybe_progress(i, n)
        Enum.reduce(shapes_of(i, n, workload), idx, &Index.add_shape(&2, key(i), &1, nil))
      end)

    :ok = LsmIndex.compact(idx.index)
    idx
  end

  # one persistent index at a time (each structure is measured in a process of its own)
  defp disk_dir, do: Path.join(System.tmp_dir!(), "lsm_bench_equality_#{System.pid()}")

  # The LSM rows settle like a service at rest: compaction idle (which also empties the NIF
  # allocator's cache of large blocks), 1 s, then every process garbage collected.
  defp settle_built(kind, s) when kind in [:lsm_raw, :lsm_disk], do: settle_lsm(s)
  defp settle_built(:lsm_eq, idx), do: settle_lsm(idx.index)
  defp settle_built(_kind, _s), do: :erlang.garbage_collect()

  defp settle_lsm(idx) do
    :ok = LsmIndex.wait_idle(idx)
    Process.sleep(1_000)
    :erlang.garbage_collect()
  end

  defp release(:lsm_disk, idx) do
    :ok = LsmIndex.close(idx)
    File.rm_rf!(disk_dir())
  end

  defp release(_kind, _s), do: :ok

  # -- lookups --

  defp lookup_fun(:map, idx), do: fn k -> Index.candidates(idx, k) end

  defp lookup_fun(:ets, t), do: fn k -> :ets.lookup(t, k) end
  defp lookup_fun(:lsm_raw, idx), do: fn k -> LsmIndex.lookup(idx, k) end

  defp lookup_fun(:lsm_eq, idx), do: fn k -> Index.candidates(idx, k) end

  defp assert_sane(kind, s, n, workload) do
    i = div(n, 2) - rem(div(n, 2), 5)
    expected = shapes_of(i, n, workload)
    got = lookup_fun(kind, s).(key(i))

    normalized =
      case {kind, got} do
        {:ets, [{_k, list}]} -> Enum.sort(list)
        {:lsm_raw, list} -> list
        # candidates: {shape_id, residual} pairs (a map for EqualityIndex)
        {_index, pairs} -> pairs |> Enum.map(&elem(&1, 0)) |> Enum.sort()
      end

    unless normalized == expected, do: raise("#{kind}: key #{i} gave #{inspect(got)}")
  end

  # One sample = #{@per_sample} consecutive calls timed together, so the timer's own cost (~100 ns)
  # is spread over them; p50/p99 are over samples, in ns per call.
  defp latency(fun, keys) do
    times =
      for chunk <- Enum.chunk_every(keys, @per_sample, @per_sample, :discard) do
        div(time(fn -> Enum.each(chunk, fun) end), @per_sample)
      end

    sorted = Enum.sort(times)
    {percentile(sorted, 0.5), percentile(sorted, 0.99)}
  end

  defp txn_latency(kind, s, n, size, count) do
    txns = for _ <- 1..count, do: for(_ <- 1..size, do: key(:rand.uniform(n) - 1))

    fun =
      case kind do
        :lsm_raw ->
          fn keys -> LsmIndex.lookup_many(s, keys) end

        :lsm_eq ->
          fn keys -> LsmEqualityIndex.candidates_many(s, keys) end

        _ ->
          one = lookup_fun(kind, s)
          fn keys -> Enum.map(keys, one) end
      end

    times = for keys <- txns, do: time(fn -> fun.(keys) end)
    percentile(Enum.sort(times), 0.5)
  end

  # -- churn: add then remove fresh pairs (keys outside the built set) --

  defp churn(kind, s, n, ops) do
    pairs = div(ops, 2)
    keys = for j <- 1..pairs, do: {miss_key(j), n * 2 + j}

    {us, s} =
      :timer.tc(fn ->
        Enum.reduce(keys, s, fn {k, h}, s -> remove(kind, add(kind, s, k, h), k, h) end)
      end)

    {round(ops / (us / 1.0e6)), s}
  end

  defp add(:map, idx, k, h), do: Index.add_shape(idx, k, h, nil)
  defp add(:lsm_eq, idx, k, h), do: Index.add_shape(idx, k, h, nil)
  defp add(:ets, t, k, h), do: :ets.insert(t, {k, [h]}) && t
  defp add(:lsm_raw, idx, k, h), do: (:ok = LsmIndex.add(idx, k, h)) && idx

  defp remove(:map, idx, k, h), do: Index.remove_shape(idx, k, h, nil)
  defp remove(:lsm_eq, idx, k, h), do: Index.remove_shape(idx, k, h, nil)
  defp remove(:ets, t, k, _h), do: :ets.delete(t, k) && t
  defp remove(:lsm_raw, idx, k, h), do: (:ok = LsmIndex.remove(idx, k, h)) && idx

  defp batch_churn(kind, s, _n, _ops) when kind in [:map, :lsm_eq], do: {nil, s}

  defp batch_churn(kind, s, n, ops) do
    batches =
      for b <- 0..(div(ops, 2_000) - 1) do
        for j <- 1..1_000, do: {miss_key(b * 1_000 + j), n * 2 + j}
      end

    {us, _} =
      :timer.tc(fn ->
        for batch <- batches do
          case kind do
            :ets ->
              :ets.insert(s, for({k, h} <- batch, do: {k, [h]}))
              for {k, _} <- batch, do: :ets.delete(s, k)

            :lsm_raw ->
              :ok = LsmIndex.add_many(s, batch)
              :ok = LsmIndex.remove_many(s, batch)
          end
        end
      end)

    {round(length(batches) * 2_000 / (us / 1.0e6)), s}
  end

  # -- memory --

  defp bytes(:map, idx), do: :erts_debug.flat_size(idx) * :erlang.system_info(:wordsize)
  defp bytes(:ets, t), do: :ets.info(t, :memory) * :erlang.system_info(:wordsize)
  defp bytes(:lsm_raw, idx), do: rust_bytes(idx)

  defp bytes(:lsm_eq, idx),
    do:
      rust_bytes(idx.index) +
        :erts_debug.flat_size(%{idx | index: nil}) * :erlang.system_info(:wordsize)

  defp rust_bytes(idx) do
    st = LsmIndex.stats(idx)
    st.segment_bytes + st.mph_heap_bytes + st.overlay_bytes + st.handle_count_bytes
  end

  defp note(:lsm_raw, idx) do
    st = LsmIndex.stats(idx)

    "Rust #{fmt_f(rust_bytes(idx) / max(st.keys, 1), 1)} B per live key, #{st.segments} segments over #{st.lanes} lanes"
  end

  defp note(:lsm_eq, idx) do
    beam = :erts_debug.flat_size(%{idx | index: nil}) * :erlang.system_info(:wordsize)

    st = LsmIndex.stats(idx.index)

    "of which BEAM per-shape state (residuals, interned ids): #{fmt_int(beam)} B; " <>
      "Rust per-handle key counts: #{fmt_int(st.handle_count_bytes)} B for " <>
      "#{fmt_int(st.counted_handles)} shapes"
  end

  defp note(_kind, _s), do: nil

  # A dead process's heap is freed after its monitors fire (the VM yields while freeing a
  # large one), so wait until :erlang.memory stops shrinking before taking a baseline.
  defp settle_memory(tries \\ 50) do
    :erlang.garbage_collect()
    before = :erlang.memory(:total)
    Process.sleep(200)

    if tries > 0 and abs(:erlang.memory(:total) - before) > 1_000_000,
      do: settle_memory(tries - 1),
      else: :ok
  end

  # VmHWM (the resident high-water mark) restarts from the current RSS (Linux 4.0+).
  defp reset_peak_rss, do: File.write("/proc/self/clear_refs", "5")

  defp peak_rss do
    with {:ok, text} <- File.read("/proc/self/status"),
         [kb] <- Regex.run(~r/VmHWM:\s*(\d+)/, text, capture: :all_but_first) do
      String.to_integer(kb) * 1024
    else
      _ -> 0
    end
  end

  defp rss do
    case File.read("/proc/self/statm") do
      {:ok, text} -> text |> String.split() |> Enum.at(1) |> String.to_integer() |> Kernel.*(4096)
      _ -> 0
    end
  end

  # -- helpers --

  defp time(fun) do
    t0 = :erlang.monotonic_time()
    fun.()
    :erlang.convert_time_unit(:erlang.monotonic_time() - t0, :native, :nanosecond)
  end

  defp percentile(sorted, p),
    do: Enum.at(sorted, min(round(p * length(sorted)), length(sorted) - 1))

  defp maybe_progress(i, n, step \\ 1) do
    chunk = max(div(n, 4), 1)
    if rem(i, chunk) < step and i > 0, do: progress("    #{div(i * 100, n)}%")
  end
end
