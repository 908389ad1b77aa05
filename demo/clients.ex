defmodule LsmIndex.Demo.Clients do
  @moduledoc """
  The shapes' clients: a process of their own that applies the shape log's frames, in
  order, to the set of row ids of every shape, as a sync service's clients read its shape
  log beside the replication stream (the stream's process only writes the log). Not public
  API.

  The sets are one ETS `:set` of `{{shape, row_id}}` (`:protected`: the owner writes, the
  driver reads after `sync/1`): an op is one ETS call (~0.35 µs here, against ~2.4 µs for a
  map of `MapSet`s), and a truncate's clears, which come in a run, are one `select_delete`
  pass for the whole run. An `:add`/`:del`/`:clear` of a shape removed before it is counted
  (`stray`: the routing still sent it a change, an error the demo reports). A removed
  shape's pairs stay in the table (a delete by shape would scan every pair); the shape log
  leaves them out of its answers.
  """

  @doc "Starts the clients, linked to the caller, with empty sets."
  @spec start_link() :: pid()
  def start_link do
    parent = self()
    ref = make_ref()

    pid =
      spawn_link(fn ->
        table = :ets.new(__MODULE__, [:set, :protected])
        send(parent, {ref, table})
        loop(%{table: table, removed: MapSet.new(), stray: 0, busy: 0, ops: 0})
      end)

    receive do
      {^ref, _table} -> pid
    end
  end

  @doc "Hands a frame (`:erlang.term_to_binary({lsn, ops})`) to the clients."
  @spec frame(pid(), binary()) :: :ok
  def frame(pid, payload) do
    send(pid, {:frame, payload})
    :ok
  end

  @doc """
  Waits until every frame handed over so far is applied; returns the table, the stray op
  count, and the time (native units) and ops the clients have spent.
  """
  @spec sync(pid()) :: %{
          table: :ets.tid(),
          stray: non_neg_integer(),
          busy: integer(),
          ops: non_neg_integer()
        }
  def sync(pid) do
    ref = Process.monitor(pid)
    send(pid, {:sync, self(), ref})

    receive do
      {^ref, state} ->
        Process.demonitor(ref, [:flush])
        state

      {:DOWN, ^ref, _, _, reason} ->
        raise "the shapes' clients are gone (#{inspect(reason)})"
    end
  end

  @doc "Stops the clients (their sets go with them)."
  @spec stop(pid()) :: :ok
  def stop(pid) do
    ref = Process.monitor(pid)
    send(pid, :stop)

    receive do
      {:DOWN, ^ref, _, _, _} -> :ok
    end
  end

  defp loop(state) do
    receive do
      {:frame, payload} ->
        t0 = System.monotonic_time()
        {_lsn, ops} = :erlang.binary_to_term(payload)
        state = apply_all(state, ops)
        busy = state.busy + System.monotonic_time() - t0
        loop(%{state | busy: busy, ops: state.ops + length(ops)})

      {:sync, from, ref} ->
        send(from, {ref, Map.take(state, [:table, :stray, :busy, :ops])})
        loop(state)

      :stop ->
        :ok
    end
  end

  defp apply_all(state, []), do: state

  defp apply_all(state, [{shape, :add, id} | ops]) do
    :ets.insert(state.table, {{shape, id}})
    apply_all(live(state, shape), ops)
  end

  defp apply_all(state, [{shape, :del, id} | ops]) do
    :ets.delete(state.table, {shape, id})
    apply_all(live(state, shape), ops)
  end

  defp apply_all(state, [{_shape, :clear} | _] = ops) do
    {clears, ops} = Enum.split_while(ops, &match?({_, :clear}, &1))
    shapes = Map.new(clears, fn {shape, :clear} -> {shape, true} end)
    state = Enum.reduce(Map.keys(shapes), state, &live(&2, &1))
    spec = [{{{:"$1", :_}}, [{:is_map_key, :"$1", {:const, shapes}}], [true]}]
    :ets.select_delete(state.table, spec)
    apply_all(state, ops)
  end

  defp apply_all(state, [{:shape_added, shape, ids, _snapshot} | ops]) do
    :ets.insert(state.table, Enum.map(ids, &{{shape.id, &1}}))
    apply_all(state, ops)
  end

  defp apply_all(state, [{:shape_removed, shape} | ops]),
    do: apply_all(%{state | removed: MapSet.put(state.removed, shape)}, ops)

  defp apply_all(state, [{:adding, _ids} | ops]), do: apply_all(state, ops)

  # counts an op that reached a removed shape
  defp live(%{removed: removed} = state, shape) do
    if MapSet.member?(removed, shape), do: %{state | stray: state.stray + 1}, else: state
  end
end
