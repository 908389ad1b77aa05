defmodule LsmIndex.Test.Memory do
  @moduledoc """
  Memory measurements in a VM of their own (a `:peer` node started over standard I/O, no
  distribution): other tests' garbage and allocator caches cannot move the figures.
  """

  @doc "Runs `fun` (a `{module, function, args}` of this code path) in a fresh VM."
  @spec in_fresh_vm({module(), atom(), list()}) :: term()
  def in_fresh_vm({m, f, a}) do
    paths = Enum.flat_map(:code.get_path(), &[~c"-pa", &1])
    {:ok, peer, _node} = :peer.start_link(%{connection: :standard_io, args: paths})

    try do
      :peer.call(peer, m, f, a, 300_000)
    after
      :peer.stop(peer)
    end
  end

  @doc """
  In this VM: builds a persistent index of `n` keys in `dir` (batches of 10,000), compacts it
  and waits for idle; returns `{anonymous memory growth, heap bytes of the index}`.
  """
  @spec persistent_anon_growth(Path.t(), pos_integer()) :: {integer(), non_neg_integer()}
  def persistent_anon_growth(dir, n) do
    {:ok, _} = Application.ensure_all_started(:lsm_index)
    base = anon_bytes()
    {:ok, index} = LsmIndex.open(dir, sync: :none)

    for chunk <- Stream.chunk_every(1..n, 10_000) do
      :ok = LsmIndex.add_many(index, Enum.map(chunk, &{&1, &1}))
    end

    :ok = LsmIndex.compact(index)
    :ok = LsmIndex.wait_idle(index)
    Process.sleep(1_000)
    stats = LsmIndex.stats(index)
    growth = anon_bytes() - base
    [123] = LsmIndex.lookup(index, 123)
    :ok = LsmIndex.close(index)
    {growth, stats.mph_heap_bytes + stats.overlay_bytes}
  end

  # The process's anonymous resident memory, once every process is garbage collected.
  defp anon_bytes do
    for p <- Process.list(), do: :erlang.garbage_collect(p)
    [_, kb] = Regex.run(~r/RssAnon:\s+(\d+) kB/, File.read!("/proc/self/status"))
    String.to_integer(kb) * 1024
  end
end
