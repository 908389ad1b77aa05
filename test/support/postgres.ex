defmodule LsmIndex.Test.Postgres do
  @moduledoc """
  The throwaway PostgreSQL cluster of the oracle test: `LsmIndex.Demo.Postgres` (in demo/,
  as the demo needs it at run time), under the name the tests use.
  """

  alias LsmIndex.Demo.Postgres

  defdelegate start(opts \\ []), to: Postgres
  defdelegate stop(pg), to: Postgres
  defdelegate query(pg, sql, database \\ "postgres"), to: Postgres
  defdelegate copy_field(text), to: Postgres
  defdelegate copy_fields(line), to: Postgres
end
