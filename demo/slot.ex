defmodule LsmIndex.Demo.Slot do
  @moduledoc """
  The demo's replication source: a logical replication slot with the `wal2json` plugin, read
  through SQL in a `psql` session (`pg_logical_slot_peek_changes`) and confirmed with
  `pg_replication_slot_advance` only when the caller says so. Not public API.

  Why peek + advance rather than `pg_recvlogical` or `pg_logical_slot_get_changes`: the slot
  must move only past transactions whose routing is durable. `get_changes` confirms what it
  returns as it returns it, and `pg_recvlogical` confirms what it has written to its output
  (a pipe counts as written), so a crash in between would lose transactions. `peek` returns
  whole transactions from the slot's confirmed position without moving it; the caller
  makes its state durable with a transaction's end LSN and then advances the slot there.
  A transaction whose commit ends at or before the confirmed position is never sent again;
  the next one always is.
  """

  alias LsmIndex.Demo.{Psql, Wal2json}

  @typedoc "A transaction: the end LSN of its commit record and its decoded changes."
  @type txn :: {non_neg_integer(), [Wal2json.row()]}

  @doc "Creates slot `name` with `wal2json`; returns its LSN (nothing before it is decoded)."
  @spec create(Psql.t(), String.t()) :: non_neg_integer()
  def create(session, name) do
    [lsn] =
      Psql.run(
        session,
        "SELECT lsn FROM pg_create_logical_replication_slot(#{Psql.literal(name)}, 'wal2json');"
      )

    parse_lsn(lsn)
  end

  @doc "The slot's confirmed position (what it will not send again)."
  @spec confirmed(Psql.t(), String.t()) :: non_neg_integer()
  def confirmed(session, name) do
    [lsn] =
      Psql.run(
        session,
        "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = #{Psql.literal(name)};"
      )

    parse_lsn(lsn)
  end

  @doc """
  The next whole transactions after the confirmed position, about `max_rows` rows' worth
  (decoding stops at the first commit past it), in commit order. `tables`: the
  `schema.table` names decoded (others' changes are left out; their transactions come as
  empty ones).
  """
  @spec peek(Psql.t(), String.t(), [String.t()], pos_integer()) :: [txn()]
  def peek(session, name, tables, max_rows) do
    options =
      tables
      |> Wal2json.plugin_options()
      |> Enum.map_join(", ", fn {k, v} -> "#{Psql.literal(k)}, #{Psql.literal(v)}" end)

    session
    |> Psql.run(
      "SELECT lsn, data FROM pg_logical_slot_peek_changes(#{Psql.literal(name)}, NULL, " <>
        "#{max_rows}, #{options});"
    )
    |> transactions([], [])
  end

  # "lsn|json" lines, B ... C per transaction; a C row's lsn is its commit's end
  defp transactions([], [], txns), do: Enum.reverse(txns)

  defp transactions([line | lines], changes, txns) do
    [lsn, json] = :binary.split(line, "|")

    case Wal2json.decode(json) do
      :begin -> transactions(lines, [], txns)
      :commit -> transactions(lines, [], [{parse_lsn(lsn), Enum.reverse(changes)} | txns])
      {:other, _} -> transactions(lines, changes, txns)
      change -> transactions(lines, [change | changes], txns)
    end
  end

  @doc "Confirms every transaction ending at or before `lsn`: the slot will not send them again."
  @spec advance(Psql.t(), String.t(), non_neg_integer()) :: :ok
  def advance(session, name, lsn) do
    Psql.run(
      session,
      "SELECT pg_replication_slot_advance(#{Psql.literal(name)}, '#{format_lsn(lsn)}');"
    )

    :ok
  end

  @doc "`X/Y` (hex) as an integer."
  @spec parse_lsn(String.t()) :: non_neg_integer()
  def parse_lsn(text) do
    [high, low] = text |> String.trim() |> String.split("/")
    String.to_integer(high, 16) * 0x1_0000_0000 + String.to_integer(low, 16)
  end

  @doc "An LSN as PostgreSQL writes it."
  @spec format_lsn(non_neg_integer()) :: String.t()
  def format_lsn(lsn),
    do:
      Integer.to_string(div(lsn, 0x1_0000_0000), 16) <>
        "/" <> Integer.to_string(rem(lsn, 0x1_0000_0000), 16)
end
