defmodule LsmIndex.Demo.Snapshot do
  @moduledoc """
  The snapshot hand-off of a shape added while the stream runs (issue 26): its initial rows
  from one `REPEATABLE READ` snapshot, then from the stream only what that snapshot did not
  see. Not public API.

  `take/2` runs, in one transaction of the driver's `psql` session,

      BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
      SELECT pg_current_snapshot(), pg_current_wal_insert_lsn();   -- the snapshot S, then L
      SELECT id, array_agg(id) FROM <table> WHERE <shape>;         -- per shape, under S
      COMMIT;

  A streamed transaction is already in the initial rows iff its xid is visible in S
  (`visible?/2`: below `xmin`, or below `xmax` and not in progress). Every transaction S sees
  committed before S was taken, so its commit record ends at or before L, read after S:
  past L in the stream no transaction is visible in S and the hand-off is over (`over?/2`).
  Until then the driver drops a visible transaction's ops for the new shape and applies the
  others. A transaction the driver routed *before* adding the shape is in S unless it was
  still in progress in S — PostgreSQL sends a commit once its record is flushed, a moment
  before the committing backend leaves the process array — so the driver routes its few
  most recent transactions again for the new shape (`LsmIndex.Demo.Driver`) and `covers?/2`
  checks that the ones it no longer holds are all visible in S.

  xids: the stream's are 32-bit, the snapshot's 64-bit (epoch << 32 | xid); a throwaway
  cluster is in epoch 0, which `take/2` checks.
  """

  alias LsmIndex.Demo.{Psql, Shapes, Slot}

  defstruct [:xmin, :xmax, :xip, :lsn]

  @typedoc "A snapshot: `xmin`, `xmax`, the xids in progress, and the WAL insert LSN after it."
  @type t :: %__MODULE__{
          xmin: non_neg_integer(),
          xmax: non_neg_integer(),
          xip: MapSet.t(),
          lsn: non_neg_integer()
        }

  @doc """
  One snapshot and, under it, the row ids of each of `shapes`: `{snapshot, %{shape id =>
  [row id]}}`.
  """
  @spec take(Psql.t(), [Shapes.t()]) :: {t(), %{non_neg_integer() => [integer()]}}
  def take(session, shapes) do
    queries =
      for shape <- shapes,
          do:
            "SELECT #{shape.id}, array_agg(id) FROM #{shape.table} WHERE #{Shapes.sql(shape)};\n"

    [head | answers] =
      Psql.run(
        session,
        [
          "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\n",
          "SELECT pg_current_snapshot(), pg_current_wal_insert_lsn();\n",
          queries,
          "COMMIT;\n"
        ]
        |> IO.iodata_to_binary()
      )

    [snapshot, lsn] = String.split(head, "|")
    snapshot = parse(snapshot, Slot.parse_lsn(lsn))

    if length(answers) != length(shapes),
      do: raise("snapshot: expected one row per shape, got #{length(answers)}")

    rows =
      Map.new(answers, fn answer ->
        [id, ids] = String.split(answer, "|")
        {String.to_integer(id), Psql.int_array(ids)}
      end)

    {snapshot, rows}
  end

  @doc "`pg_current_snapshot()`'s text (`xmin:xmax:xip,...`) with the LSN read after it."
  @spec parse(String.t(), non_neg_integer()) :: t()
  def parse(text, lsn) do
    [xmin, xmax, xip] = String.split(text, ":")
    {xmin, xmax} = {String.to_integer(xmin), String.to_integer(xmax)}
    xip = if xip == "", do: [], else: xip |> String.split(",") |> Enum.map(&String.to_integer/1)

    if xmax >= 0x1_0000_0000,
      do: raise("snapshot: xid epoch past 0 (#{text}): the stream's 32-bit xids are ambiguous")

    %__MODULE__{xmin: xmin, xmax: xmax, xip: MapSet.new(xip), lsn: lsn}
  end

  @doc "Whether the transaction `xid` had committed when `snapshot` was taken."
  @spec visible?(t(), non_neg_integer()) :: boolean()
  def visible?(%__MODULE__{xmin: xmin}, xid) when xid < xmin, do: true
  def visible?(%__MODULE__{xmax: xmax}, xid) when xid >= xmax, do: false
  def visible?(%__MODULE__{xip: xip}, xid), do: not MapSet.member?(xip, xid)

  @doc "Whether a transaction whose commit ends at `end_lsn` is past every one `snapshot` saw."
  @spec over?(t(), non_neg_integer()) :: boolean()
  def over?(%__MODULE__{lsn: lsn}, end_lsn), do: end_lsn > lsn

  @doc """
  Whether the transactions routed before the shape was added and no longer held for routing
  again (their largest xid: `evicted`, `nil` for none) are all in `snapshot`.
  """
  @spec covers?(t(), non_neg_integer() | nil) :: boolean()
  def covers?(_snapshot, nil), do: true
  def covers?(%__MODULE__{xmin: xmin}, evicted), do: evicted < xmin
end
