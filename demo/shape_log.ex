defmodule LsmIndex.Demo.ShapeLog do
  @moduledoc """
  What each shape's client holds — the set of row ids per shape — and, when given a file,
  the durable log it is rebuilt from after a crash. Not public API.

  `apply_ops/2` queues ops; `commit/2` appends the queued ops with the LSN they bring the
  shapes to as one frame, fsyncs it, and hands the frame to the clients. The frame is the
  unit of durability: after a crash `open/1` hands the complete frames to the clients and
  reports the last frame's LSN, and a torn frame at the end (a write the crash cut short) is
  cut off. A complete frame with a bad checksum is an error.

  The clients are a process of their own (`LsmIndex.Demo.Clients`), as a sync service's
  clients read its shape log beside the stream rather than in it: the sets change there,
  frame by frame, off the stream's path. `rows/2`, `all_rows/1`, `size/1` and `stray/1`
  first wait for the clients to have applied every committed frame (ops not yet committed
  are not in the sets). The log itself keeps what the churn needs at once: the shapes added
  and removed while streaming.

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

  alias LsmIndex.Demo.{Clients, Routing}

  defstruct file: nil,
            path: nil,
            clients: nil,
            lsn: 0,
            pending: [],
            frames: 0,
            added: %{},
            snapshots: %{},
            adding: MapSet.new(),
            removed: MapSet.new()

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
  def open(nil), do: %__MODULE__{clients: Clients.start_link()}

  def open(path) do
    bytes = if File.exists?(path), do: File.read!(path), else: ""
    {log, good} = replay(bytes, %__MODULE__{path: path, clients: Clients.start_link()}, 0)

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

  defp replay(bytes, log, at) do
    case bytes do
      <<_::binary-size(at), len::32, crc::32, payload::binary-size(len), _::binary>> ->
        if :erlang.crc32(payload) != crc,
          do: raise("#{log.path}: frame at byte #{at}: checksum mismatch")

        {lsn, ops} = :erlang.binary_to_term(payload)
        Clients.frame(log.clients, payload)
        log = %{registry(log, ops) | lsn: lsn, frames: log.frames + 1}
        replay(bytes, log, at + 8 + len)

      _ ->
        {log, at}
    end
  end

  @doc "Queues `ops` (in order) for the next `commit/2`."
  @spec apply_ops(t(), [op()]) :: t()
  def apply_ops(log, ops), do: %{registry(log, ops) | pending: [ops | log.pending]}

  @doc """
  `apply_ops/2` of a transaction's routed ops (`{shape, :add | :del, id}`, `{shape, :clear}`
  only: no shape is added or removed by them, so the registry is not walked).
  """
  @spec queue_routed(t(), [Routing.op()]) :: t()
  def queue_routed(log, ops), do: %{log | pending: [ops | log.pending]}

  @doc """
  Makes the queued ops durable as of `lsn` (a file: one frame, fsynced; in memory: the frame
  alone) and hands the frame to the clients. Only after it returns may the replication slot
  be confirmed up to `lsn`.
  """
  @spec commit(t(), non_neg_integer()) :: t()
  def commit(%__MODULE__{file: file} = log, lsn) do
    ops = log.pending |> Enum.reverse() |> Enum.concat()
    payload = :erlang.term_to_binary({lsn, ops})

    if file do
      :ok = :file.write(file, [<<byte_size(payload)::32, :erlang.crc32(payload)::32>>, payload])
      :ok = :file.datasync(file)
    end

    Clients.frame(log.clients, payload)
    %{log | lsn: lsn, pending: [], frames: log.frames + 1}
  end

  @doc "Closes the file and stops the clients."
  @spec close(t()) :: :ok
  def close(%__MODULE__{file: file, clients: clients}) do
    Clients.stop(clients)
    if file, do: :file.close(file), else: :ok
  end

  @doc "The row ids shape `shape` holds (a scan of every pair: for tests and single looks)."
  @spec rows(t(), non_neg_integer()) :: MapSet.t()
  def rows(%__MODULE__{clients: clients} = log, shape) do
    %{table: table} = Clients.sync(clients)

    if MapSet.member?(log.removed, shape),
      do: MapSet.new(),
      else: MapSet.new(:ets.select(table, [{{{shape, :"$1"}}, [], [:"$1"]}]))
  end

  @doc "Every live shape's rows: shape id => `MapSet` of row ids (shapes holding none are absent)."
  @spec all_rows(t()) :: %{non_neg_integer() => MapSet.t()}
  def all_rows(%__MODULE__{clients: clients, removed: removed}) do
    %{table: table} = Clients.sync(clients)

    table
    |> :ets.tab2list()
    |> Enum.reject(fn {{shape, _id}} -> MapSet.member?(removed, shape) end)
    |> Enum.group_by(fn {{shape, _id}} -> shape end, fn {{_shape, id}} -> id end)
    |> Map.new(fn {shape, ids} -> {shape, MapSet.new(ids)} end)
  end

  @doc "How many (shape, row) pairs the live shapes' clients hold."
  @spec size(t()) :: non_neg_integer()
  def size(%__MODULE__{clients: clients, removed: removed}) do
    %{table: table} = Clients.sync(clients)

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
  def stray(%__MODULE__{clients: clients}), do: Clients.sync(clients).stray

  @doc "How long the clients have spent applying frames (native units) and how many ops."
  @spec clients_work(t()) :: {integer(), non_neg_integer()}
  def clients_work(%__MODULE__{clients: clients}) do
    %{busy: busy, ops: ops} = Clients.sync(clients)
    {busy, ops}
  end

  # what the churn needs from the ops at once: shapes being added, added, removed
  defp registry(log, ops), do: Enum.reduce(ops, log, &register/2)

  defp register({:adding, ids}, log),
    do: %{log | adding: MapSet.union(log.adding, MapSet.new(ids))}

  defp register({:shape_added, shape, _ids, snapshot}, log) do
    %{
      log
      | added: Map.put(log.added, shape.id, shape),
        snapshots: Map.put(log.snapshots, shape.id, snapshot),
        adding: MapSet.delete(log.adding, shape.id)
    }
  end

  defp register({:shape_removed, shape}, log),
    do: %{log | removed: MapSet.put(log.removed, shape)}

  defp register(_op, log), do: log
end
