defmodule LsmIndex.Demo.Slot do
  @moduledoc """
  The demo's replication slot and publication, managed through SQL in a `psql` session,
  and LSN text. Not public API. The slot is read by `LsmIndex.Demo.Replication` (the
  streaming protocol, `pgoutput`); it moves only when the driver's status updates confirm
  a position, which is always what its shape log holds durably.
  """

  alias LsmIndex.Demo.Psql

  @publication "lsm_demo"

  @doc "The publication the stream carries."
  @spec publication() :: String.t()
  def publication, do: @publication

  @doc "The DDL of the publication of `tables` (in schema `public`)."
  @spec publication_ddl([String.t()]) :: String.t()
  def publication_ddl(tables),
    do: "CREATE PUBLICATION #{@publication} FOR TABLE #{Enum.join(tables, ", ")};"

  @doc "Creates slot `name` with `pgoutput`; returns its LSN (nothing before it is decoded)."
  @spec create(Psql.t(), String.t()) :: non_neg_integer()
  def create(session, name) do
    [lsn] =
      Psql.run(
        session,
        "SELECT lsn FROM pg_create_logical_replication_slot(#{Psql.literal(name)}, 'pgoutput');"
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
