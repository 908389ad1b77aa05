defmodule LsmIndex.Demo.ShapeLog do
  @moduledoc """
  What each shape's client holds — the set of row ids per shape — and, when given a file,
  the durable log it is rebuilt from after a crash. Not public API.

  `apply_ops/2` changes the sets and queues the ops; `commit/2` appends the queued ops with
  the LSN they bring the shapes to as one frame and fsyncs it. The frame is the unit of
  durability: after a crash `open/1` folds the complete frames into the sets and reports the
  last frame's LSN, and a torn frame at the end (a write the crash cut short) is cut off. A
  complete frame with a bad checksum is an error.

  The sets are one ETS `:set` of `{{shape, row_id}}` owned by the caller: an op is one ETS
  call (~0.3 µs) where a map of `MapSet`s cost ~2.4 µs, and a truncate's clears, which come
  in a run, are one `select_delete` pass for the whole run.

  Ops, applied in order:

      {shape, :add, id} | {shape, :del, id} | {shape, :clear}     a routed change
      {:adding, [shape_id]}          shapes about to be added while streaming (logged before
                                     a router holds them: after a crash, ones never added
                                     are taken out of the routers again)
      {:shape_added, shape, ids, snapshot}   a shape added while streaming
                                     (`LsmIndex.Demo.Shapes.t`), its initial rows and the
                                     snapshot they come from (`LsmIndex.Demo.Snapshot`)
      {:shape_removed, shape_id}     a shape removed: its rows no longer count, and no op
                                     may follow

  An `:add`/`:del`/`:clear` of a removed shape is counted (`stray/1`): the routing still
  sent it a change, which the check reports as an error.

  ```text
  file   frame*
  frame  len u32 BE | crc32 u32 BE (of payload) | payload
  payload :erlang.term_to_binary({lsn, [op]}), ops in the order they were applied
  ```
  """

  alias LsmIndex.Demo.Routing

  defstruct file: nil,
            path: nil,
            table: nil,
            lsn: 0,
            pending: [],
            frames: 0,
            added: %{},
            snapshots: %{},
            adding: MapSet.new(),
            removed: MapSet.new(),
            stray: 0

  @typedoc "The client side of every shape."
  @type t :: %__MODULE__{}
  @typedoc "What the log records."
  @type op ::
          Routing.op()
          | {:adding, [non_neg_integer()]}
          | {:shape_added, LsmIndex.Demo.Shapes.t(), [integer()], LsmIndex.Demo.Snapshot.t()}
          | {:shape_removed, non_neg_integer()}

  @doc """
  The shapes' sets: empty in memory (`nil`), else recovered from `path` (created if missing)
  and opened for appending.
  """
  @spec open(Path.t() | nil) :: t()
  def open(nil), do: %__MODULE__{table: new_table()}

  def open(path) do
    bytes = if File.exists?(path), do: File.read!(path), else: ""
    {log, good} = replay(bytes, %__MODULE__{path: path, table: new_table()}, 0)

    if good < byte_size(bytes) do
      {:ok, io} = :file.open(path, [:read, :write, :binary, :raw])
      {:ok, _} = :file.position(io, good)
      :ok = :file.truncate(io)
      :ok = :file.sync(io)
      :ok = :file.close(io)
    end

    {:ok, file} = :file.open(path, [:append, :binary, :raw])
    %{log | file: file}
  end

  defp new_table, do: :ets.new(__MODULE__, [:set, :private])

  defp replay(bytes, log, at) do
    case bytes do
      <<_::binary-size(at), len::32, crc::32, payload::binary-size(len), _::binary>> ->
        if :erlang.crc32(payload) != crc,
          do: raise("#{log.path}: frame at byte #{at}: checksum mismatch")

        {lsn, ops} = :erlang.binary_to_term(payload)
        log = %{apply_all(log, ops) | lsn: lsn, frames: log.frames + 1}
        replay(bytes, log, at + 8 + len)

      _ ->
        {log, at}
    end
  end

  @doc "Applies `ops` (in order) to the sets and queues them for the next `commit/2`."
  @spec apply_ops(t(), [op()]) :: t()
  def apply_ops(%__MODULE__{file: nil} = log, ops), do: apply_all(log, ops)
  def apply_ops(log, ops), do: %{apply_all(log, ops) | pending: [ops | log.pending]}

  @doc """
  Makes the sets durable as of `lsn` (a file: one frame, fsynced; in memory: records the
  LSN). Only after it returns may the replication slot be confirmed up to `lsn`.
  """
  @spec commit(t(), non_neg_integer()) :: t()
  def commit(%__MODULE__{file: nil} = log, lsn), do: %{log | lsn: lsn}

  def commit(%__MODULE__{file: file} = log, lsn) do
    ops = log.pending |> Enum.reverse() |> Enum.concat()
    payload = :erlang.term_to_binary({lsn, ops})
    :ok = :file.write(file, [<<byte_size(payload)::32, :erlang.crc32(payload)::32>>, payload])
    :ok = :file.datasync(file)
    %{log | lsn: lsn, pending: [], frames: log.frames + 1}
  end

  @doc "Closes the file and drops the sets."
  @spec close(t()) :: :ok
  def close(%__MODULE__{file: file, table: table}) do
    :ets.delete(table)
    if file, do: :file.close(file), else: :ok
  end

  @doc "The row ids shape `shape` holds (a scan of every pair: for tests and single looks)."
  @spec rows(t(), non_neg_integer()) :: MapSet.t()
  def rows(%__MODULE__{table: table} = log, shape) do
    if MapSet.member?(log.removed, shape),
      do: MapSet.new(),
      else: MapSet.new(:ets.select(table, [{{{shape, :"$1"}}, [], [:"$1"]}]))
  end

  @doc "Every live shape's rows: shape id => `MapSet` of row ids (shapes holding none are absent)."
  @spec all_rows(t()) :: %{non_neg_integer() => MapSet.t()}
  def all_rows(%__MODULE__{table: table, removed: removed}) do
    table
    |> :ets.tab2list()
    |> Enum.reject(fn {{shape, _id}} -> MapSet.member?(removed, shape) end)
    |> Enum.group_by(fn {{shape, _id}} -> shape end, fn {{_shape, id}} -> id end)
    |> Map.new(fn {shape, ids} -> {shape, MapSet.new(ids)} end)
  end

  @doc "How many (shape, row) pairs the live shapes' clients hold."
  @spec size(t()) :: non_neg_integer()
  def size(%__MODULE__{table: table, removed: removed}) do
    if MapSet.size(removed) == 0,
      do: :ets.info(table, :size),
      else: Enum.count(:ets.tab2list(table), fn {{s, _}} -> not MapSet.member?(removed, s) end)
  end

  @doc "Shapes added while streaming (id => shape), removed ones included."
  @spec added(t()) :: %{non_neg_integer() => LsmIndex.Demo.Shapes.t()}
  def added(%__MODULE__{added: added}), do: added

  @doc "The snapshot of each shape added while streaming (id => `LsmIndex.Demo.Snapshot.t`)."
  @spec snapshots(t()) :: %{non_neg_integer() => LsmIndex.Demo.Snapshot.t()}
  def snapshots(%__MODULE__{snapshots: snapshots}), do: snapshots

  @doc "Ids logged as about to be added and never added (a crash came between)."
  @spec adding(t()) :: MapSet.t()
  def adding(%__MODULE__{adding: adding}), do: adding

  @doc "Ids of the shapes removed while streaming."
  @spec removed(t()) :: MapSet.t()
  def removed(%__MODULE__{removed: removed}), do: removed

  @doc "Ops that reached a shape after it was removed (0 unless the routing is wrong)."
  @spec stray(t()) :: non_neg_integer()
  def stray(%__MODULE__{stray: stray}), do: stray

  defp apply_all(log, []), do: log

  defp apply_all(log, [{shape, :add, id} | ops]) do
    log = check_live(log, shape)
    :ets.insert(log.table, {{shape, id}})
    apply_all(log, ops)
  end

  defp apply_all(log, [{shape, :del, id} | ops]) do
    log = check_live(log, shape)
    :ets.delete(log.table, {shape, id})
    apply_all(log, ops)
  end

  defp apply_all(log, [{_shape, :clear} | _] = ops) do
    {clears, ops} = Enum.split_while(ops, &match?({_, :clear}, &1))
    shapes = Map.new(clears, fn {shape, :clear} -> {shape, true} end)
    log = Enum.reduce(Map.keys(shapes), log, &check_live(&2, &1))
    spec = [{{{:"$1", :_}}, [{:is_map_key, :"$1", {:const, shapes}}], [true]}]
    :ets.select_delete(log.table, spec)
    apply_all(log, ops)
  end

  defp apply_all(log, [{:adding, ids} | ops]),
    do: apply_all(%{log | adding: MapSet.union(log.adding, MapSet.new(ids))}, ops)

  defp apply_all(log, [{:shape_added, shape, ids, snapshot} | ops]) do
    :ets.insert(log.table, Enum.map(ids, &{{shape.id, &1}}))

    log = %{
      log
      | added: Map.put(log.added, shape.id, shape),
        snapshots: Map.put(log.snapshots, shape.id, snapshot),
        adding: MapSet.delete(log.adding, shape.id)
    }

    apply_all(log, ops)
  end

  # its rows stay in the table (a delete by shape is a scan of every pair) but no longer count
  defp apply_all(log, [{:shape_removed, shape} | ops]),
    do: apply_all(%{log | removed: MapSet.put(log.removed, shape)}, ops)

  defp check_live(%__MODULE__{removed: removed} = log, shape) do
    if MapSet.member?(removed, shape), do: %{log | stray: log.stray + 1}, else: log
  end
end
