defmodule LsmIndex.Demo.Churn do
  @moduledoc """
  Shapes added and removed while the stream runs (`--add-rate N` shapes/s, removals at
  `--remove-rate`), as a sync service's clients subscribe and leave. Not public API.

  Adding shapes, between two reads of the stream, a batch every 250 ms at most (everything
  routed so far is durable at position P):

  1. `{:adding, ids}` is logged (a frame at P): a crash from here on takes the ids out of the
     routers again at resume unless step 4's frame made it;
  2. one snapshot for the batch (`LsmIndex.Demo.Snapshot.take/2`: `REPEATABLE READ`, each
     shape's rows under it, the WAL insert LSN L after it);
  3. the shapes go into the routing; the recent transactions the snapshot does not see (a
     commit sent a moment before it became visible: almost never) are routed again for them;
  4. `{:shape_added, shape, rows, snapshot}` per shape and step 3's ops: one frame at P.

  From then on every transaction is routed to the new shapes too, and `hand_off/4` drops
  their ops of a transaction the snapshot saw; past L (`passed/2`) the hand-off is over. A
  removal logs `{:shape_removed, id}` (a frame) and then takes the shape out of the routing:
  after a crash in between, resume takes it out.
  """

  alias LsmIndex.Demo.{Routing, ShapeLog, Shapes, Snapshot}

  @every_ms 250

  defstruct [
    :add_rate,
    :remove_rate,
    :next_id,
    :seed,
    :users,
    :projects,
    :initial,
    :rand,
    :started,
    last_step: nil,
    added_run: 0,
    removed_run: 0,
    snapshot_rows: 0,
    dropped: 0,
    rerouted: 0,
    handoffs: []
  ]

  @typedoc "The churn's settings and counters, and the hand-offs in progress."
  @type t :: %__MODULE__{}

  @doc """
  The churn of a run whose first shapes are `initial` (a tuple: id => shape), resuming what
  `log` holds: its added shapes' hand-offs not yet over are carried on.
  """
  @spec new(map(), tuple(), ShapeLog.t()) :: t()
  def new(config, initial, log) do
    ids = Map.keys(ShapeLog.added(log)) ++ MapSet.to_list(ShapeLog.adding(log))

    handoffs =
      for {id, snapshot} <- ShapeLog.snapshots(log),
          not Snapshot.over?(snapshot, log.lsn),
          do: {MapSet.new([id]), snapshot}

    %__MODULE__{
      add_rate: config.add_rate,
      remove_rate: config.remove_rate,
      next_id: Enum.max([tuple_size(initial) - 1 | ids]) + 1,
      seed: config.seed,
      users: config.users,
      projects: config.projects,
      initial: initial,
      rand: :rand.seed_s(:exsss, {config.seed, log.frames, 26}),
      started: System.monotonic_time(:millisecond),
      handoffs: handoffs
    }
  end

  @doc """
  At resume: the routing made to hold exactly the shapes `log` says are live (shapes added
  while streaming added again; removed ones, and ones logged as being added but never
  added, taken out).
  """
  @spec reconcile(Routing.t(), t(), ShapeLog.t()) :: Routing.t()
  def reconcile(routing, churn, log) do
    removed = ShapeLog.removed(log)
    live = for {id, shape} <- ShapeLog.added(log), not MapSet.member?(removed, id), do: shape
    routing = Routing.add_shapes(routing, live)

    gone =
      for id <- Enum.concat(removed, ShapeLog.adding(log)),
          shape = shape(churn, log, id),
          shape != nil,
          do: shape

    Enum.reduce(gone, routing, &Routing.remove_shape(&2, &1.table, &1.id))
  end

  @doc "Every live shape at the end: the first ones and the added ones, less the removed."
  @spec live(t(), ShapeLog.t()) :: [Shapes.t()]
  def live(churn, log) do
    removed = ShapeLog.removed(log)

    (Tuple.to_list(churn.initial) ++ Enum.sort_by(Map.values(ShapeLog.added(log)), & &1.id))
    |> Enum.reject(&MapSet.member?(removed, &1.id))
  end

  @doc "`ops` of transaction `xid` (commit ending at `lsn`) without those a hand-off's snapshot saw."
  @spec hand_off(t(), non_neg_integer(), non_neg_integer(), [ShapeLog.op()]) :: [ShapeLog.op()]
  def hand_off(%__MODULE__{handoffs: []}, _xid, _lsn, ops), do: ops

  def hand_off(%__MODULE__{handoffs: handoffs}, xid, lsn, ops) do
    seen =
      for {ids, snapshot} <- handoffs,
          not Snapshot.over?(snapshot, lsn),
          Snapshot.visible?(snapshot, xid),
          reduce: MapSet.new() do
        acc -> MapSet.union(acc, ids)
      end

    if MapSet.size(seen) == 0,
      do: ops,
      else: Enum.reject(ops, &MapSet.member?(seen, elem(&1, 0)))
  end

  @doc "The hand-offs still in progress once the stream is past a commit ending at `lsn`."
  @spec passed(t(), non_neg_integer()) :: t()
  def passed(%__MODULE__{handoffs: []} = churn, _lsn), do: churn

  def passed(churn, lsn),
    do: %{churn | handoffs: Enum.reject(churn.handoffs, &Snapshot.over?(elem(&1, 1), lsn))}

  @doc """
  The adds and removals due by now (the stream `state` of `LsmIndex.Demo.Stream`: `churn`,
  `log`, `routing`, `session`, `ring`), each batch made durable as the module doc says.
  """
  @spec step(map()) :: map()
  def step(%{churn: churn} = state) do
    now = System.monotonic_time(:millisecond)
    elapsed = (now - churn.started) / 1000
    adds = floor(elapsed * churn.add_rate) - churn.added_run
    removes = floor(elapsed * churn.remove_rate) - churn.removed_run

    # a batch every 250 ms at most: one snapshot (a psql round trip) serves the batch
    if (adds <= 0 and removes <= 0) or (churn.last_step && now - churn.last_step < @every_ms) do
      state
    else
      state = %{state | churn: %{churn | last_step: now}}
      t0 = System.monotonic_time()
      state = if adds > 0, do: add(state, adds), else: state
      state = if removes > 0, do: remove(state, removes), else: state
      %{state | split: Map.update!(state.split, :churn, &(&1 + System.monotonic_time() - t0))}
    end
  end

  defp add(%{churn: churn, log: log} = state, n) do
    ids = Enum.to_list(churn.next_id..(churn.next_id + n - 1))
    known = Routing.known_columns(state.routing, "todos")
    shapes = Enum.map(ids, &Shapes.one(&1, churn.seed, churn.users, churn.projects, known))
    log = log |> ShapeLog.apply_ops([{:adding, ids}]) |> ShapeLog.commit(log.lsn)
    {snapshot, rows} = Snapshot.take(state.session, shapes)
    {recent, _n, evicted} = state.ring

    unless Snapshot.covers?(snapshot, evicted),
      do: raise("hand-off: transactions the snapshot may not see are no longer held")

    routing = Routing.add_shapes(state.routing, shapes)
    new = MapSet.new(ids)

    again =
      for {xid, _lsn, changes} <- Enum.reverse(recent),
          not Snapshot.visible?(snapshot, xid),
          {ops, _} = Routing.route(routing, changes),
          op <- ops,
          MapSet.member?(new, elem(op, 0)),
          do: op

    added = for shape <- shapes, do: {:shape_added, shape, Map.fetch!(rows, shape.id), snapshot}
    log = log |> ShapeLog.apply_ops(added ++ again) |> ShapeLog.commit(log.lsn)

    churn = %{
      churn
      | next_id: churn.next_id + n,
        added_run: churn.added_run + n,
        snapshot_rows:
          churn.snapshot_rows + (rows |> Map.values() |> Enum.map(&length/1) |> Enum.sum()),
        rerouted: churn.rerouted + length(again),
        handoffs: [{new, snapshot} | churn.handoffs]
    }

    %{state | churn: churn, log: log, routing: routing}
  end

  defp remove(%{churn: churn} = state, n) do
    {victims, rand} = pick(churn, state.log, n, churn.rand, [])
    log = state.log |> ShapeLog.apply_ops(Enum.map(victims, &{:shape_removed, &1.id}))
    log = ShapeLog.commit(log, log.lsn)
    routing = Enum.reduce(victims, state.routing, &Routing.remove_shape(&2, &1.table, &1.id))
    churn = %{churn | rand: rand, removed_run: churn.removed_run + n}
    %{state | churn: churn, log: log, routing: routing}
  end

  # n distinct live shapes, at random
  defp pick(_churn, _log, 0, rand, acc), do: {acc, rand}

  defp pick(churn, log, n, rand, acc) do
    {id, rand} = :rand.uniform_s(churn.next_id, rand)
    id = id - 1
    shape = shape(churn, log, id)

    if shape == nil or MapSet.member?(ShapeLog.removed(log), id) or
         Enum.any?(acc, &(&1.id == id)),
       do: pick(churn, log, n, rand, acc),
       else: pick(churn, log, n - 1, rand, [shape | acc])
  end

  # shape `id`: one of the first ones, one added while streaming, or (logged as being added,
  # never added) made again from its id
  defp shape(churn, log, id) do
    cond do
      id < tuple_size(churn.initial) -> elem(churn.initial, id)
      shape = ShapeLog.added(log)[id] -> shape
      id < churn.next_id -> Shapes.one(id, churn.seed, churn.users, churn.projects)
      true -> nil
    end
  end

  @doc "One line for the progress output."
  @spec summary(t()) :: String.t()
  def summary(churn),
    do: "shapes +#{churn.added_run} -#{churn.removed_run} (#{length(churn.handoffs)} handing off)"
end
