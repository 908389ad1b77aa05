defmodule LsmIndex.Demo.ShapeLog do
  @moduledoc """
  What each shape's client holds — the set of row ids per shape — and, when given a file,
  the durable log it is rebuilt from after a crash. Not public API.

  `apply_ops/2` changes the sets in memory and queues the ops; `commit/2` appends the queued
  ops with the LSN they bring the shapes to as one frame and fsyncs it. The frame is the
  unit of durability: after a crash `open/1` folds the complete frames into the sets and
  reports the last frame's LSN, and a torn frame at the end (a write the crash cut short)
  is cut off. A complete frame with a bad checksum is an error.

  ```text
  file   frame*
  frame  len u32 BE | crc32 u32 BE (of payload) | payload
  payload :erlang.term_to_binary({lsn, [op]}), ops in the order they were applied
  ```
  """

  alias LsmIndex.Demo.Routing

  defstruct file: nil, path: nil, sets: %{}, lsn: 0, pending: [], frames: 0

  @typedoc "The client side of every shape."
  @type t :: %__MODULE__{}

  @doc """
  The shapes' sets: empty in memory (`nil`), else recovered from `path` (created if missing)
  and opened for appending.
  """
  @spec open(Path.t() | nil) :: t()
  def open(nil), do: %__MODULE__{}

  def open(path) do
    bytes = if File.exists?(path), do: File.read!(path), else: ""
    {log, good} = replay(bytes, %__MODULE__{path: path}, 0)

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
        log = %{log | sets: apply_all(log.sets, ops), lsn: lsn, frames: log.frames + 1}
        replay(bytes, log, at + 8 + len)

      _ ->
        {log, at}
    end
  end

  @doc "Applies `ops` (in order) to the sets and queues them for the next `commit/2`."
  @spec apply_ops(t(), [Routing.op()]) :: t()
  def apply_ops(%__MODULE__{file: nil} = log, ops), do: %{log | sets: apply_all(log.sets, ops)}

  def apply_ops(log, ops),
    do: %{log | sets: apply_all(log.sets, ops), pending: [ops | log.pending]}

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

  @doc "Closes the file (an in-memory log: nothing to do)."
  @spec close(t()) :: :ok
  def close(%__MODULE__{file: nil}), do: :ok
  def close(%__MODULE__{file: file}), do: :file.close(file)

  @doc "The row ids shape `shape` holds."
  @spec rows(t(), non_neg_integer()) :: MapSet.t()
  def rows(%__MODULE__{sets: sets}, shape), do: Map.get(sets, shape, MapSet.new())

  @doc "How many (shape, row) pairs the clients hold."
  @spec size(t()) :: non_neg_integer()
  def size(%__MODULE__{sets: sets}),
    do: sets |> Map.values() |> Enum.map(&MapSet.size/1) |> Enum.sum()

  defp apply_all(sets, ops), do: Enum.reduce(ops, sets, &apply_op/2)

  defp apply_op({shape, :add, id}, sets),
    do: Map.update(sets, shape, MapSet.new([id]), &MapSet.put(&1, id))

  defp apply_op({shape, :del, id}, sets) do
    case sets do
      %{^shape => rows} -> Map.put(sets, shape, MapSet.delete(rows, id))
      _ -> sets
    end
  end

  defp apply_op({shape, :clear}, sets), do: Map.delete(sets, shape)
end
