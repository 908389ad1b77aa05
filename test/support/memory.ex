defmodule LsmIndex.Test.Memory do
  @moduledoc """
  Memory measurements in a VM of their own (a `:peer` node started over standard I/O, no
  distribution): other tests' garbage and allocator caches cannot move the figures.

  The peer runs with `+MMmcs 0` (no cache of freed carriers in the BEAM's segment
  allocator): with the cache, a VM hands freed carriers back over ~10 s, so a reading taken
  then depends on when it was taken (`bench/report.exs`, `stable_memory/0`).
  """

  @doc "Runs `fun` (a `{module, function, args}` of this code path) in a fresh VM."
  @spec in_fresh_vm({module(), atom(), list()}) :: term()
  def in_fresh_vm({m, f, a}) do
    paths = Enum.flat_map(:code.get_path(), &[~c"-pa", &1])

    {:ok, peer, _node} =
      :peer.start_link(%{
        connection: :standard_io,
        args: [~c"+MMmcs", ~c"0" | paths],
        # a hang guard: a VM starts in about a second, but the machine may be busy
        wait_boot: 120_000
      })

    try do
      :peer.call(peer, m, f, a, 600_000)
    after
      :peer.stop(peer)
    end
  end

  @doc """
  In this VM: what building and compacting a persistent index of `n` keys in `dir` adds to
  the VM's anonymous resident memory, against a baseline taken after the same work was done
  once on a small index (code loaded, the compaction pool's threads and their allocator
  arenas made, the log's buffers sized), both read once memory holds still.

  Returns `%{growth:, heap:, segment_bytes:}`: anonymous growth in bytes, the heap bytes the
  index counts (overlays, decoded MPHs) and the bytes of its segment files.
  """
  @spec persistent_anon_growth(Path.t(), pos_integer()) :: %{
          growth: integer(),
          heap: non_neg_integer(),
          segment_bytes: non_neg_integer()
        }
  def persistent_anon_growth(dir, n) do
    {:ok, _} = Application.ensure_all_started(:lsm_index)

    warm_up = dir <> "-warm-up"
    build(warm_up, 1..20_000) |> LsmIndex.close()
    File.rm_rf!(warm_up)

    base = stable_anon()
    index = build(dir, 1..n)
    after_build = stable_anon()
    stats = LsmIndex.stats(index)
    [123] = LsmIndex.lookup(index, 123)
    :ok = LsmIndex.close(index)

    %{
      growth: after_build - base,
      heap: stats.mph_heap_bytes + stats.overlay_bytes,
      segment_bytes: stats.segment_bytes
    }
  end

  defp build(dir, keys) do
    {:ok, index} = LsmIndex.open(dir, sync: :none)

    for chunk <- Stream.chunk_every(keys, 10_000) do
      :ok = LsmIndex.add_many(index, Enum.map(chunk, &{&1, &1}))
    end

    :ok = LsmIndex.compact(index)
    :ok = LsmIndex.wait_idle(index)
    index
  end

  # Anonymous resident memory once it holds still: every process garbage collected, then
  # read every second until two readings 1 s apart are within 64 KiB (at most 60 s).
  defp stable_anon, do: stable_anon(anon_bytes(), 60)

  defp stable_anon(previous, tries) do
    Process.sleep(1_000)
    now = anon_bytes()
    if abs(now - previous) < 64 * 1024 or tries <= 1, do: now, else: stable_anon(now, tries - 1)
  end

  # The process's anonymous resident memory, once every process is garbage collected.
  defp anon_bytes do
    for p <- Process.list(), do: :erlang.garbage_collect(p)
    [_, kb] = Regex.run(~r/RssAnon:\s+(\d+) kB/, File.read!("/proc/self/status"))
    String.to_integer(kb) * 1024
  end
end
