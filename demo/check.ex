defmodule LsmIndex.Demo.Check do
  @moduledoc """
  The consistency check: every shape's rows as its client holds them against `SELECT id
  FROM <table> WHERE <shape>` in PostgreSQL, all through one `psql` session (500 queries per
  round trip). Not public API.
  """

  alias LsmIndex.Demo.{Psql, ShapeLog, Shapes}

  @chunk 500

  @typedoc "The verdict: shapes checked, rows missing and extra in all, the first few culprits."
  @type result :: %{
          shapes: non_neg_integer(),
          rows: non_neg_integer(),
          missing: non_neg_integer(),
          extra: non_neg_integer(),
          examples: [String.t()]
        }

  @doc "Checks every shape in `shapes` against the database of `session`."
  @spec run(Psql.t(), [Shapes.t()], ShapeLog.t()) :: result()
  def run(session, shapes, log) do
    result = %{shapes: 0, rows: 0, missing: 0, extra: 0, examples: []}
    held = ShapeLog.all_rows(log)

    shapes
    |> Enum.chunk_every(@chunk)
    |> Enum.reduce(result, fn chunk, result ->
      sql =
        for shape <- chunk,
            do:
              "SELECT #{shape.id}, array_agg(id ORDER BY id) FROM #{shape.table} " <>
                "WHERE #{Shapes.sql(shape)};\n"

      answers = Psql.run(session, sql)
      unless length(answers) == length(chunk), do: raise("expected one row per shape")

      chunk
      |> Enum.zip(answers)
      |> Enum.reduce(result, fn {shape, answer}, result ->
        compare(shape, answer, held, result)
      end)
    end)
  end

  defp compare(shape, answer, held, result) do
    [id, ids] = String.split(answer, "|")
    ^id = Integer.to_string(shape.id)
    want = ids |> Psql.int_array() |> MapSet.new()
    have = Map.get(held, shape.id, MapSet.new())
    missing = MapSet.difference(want, have)
    extra = MapSet.difference(have, want)

    examples =
      if (MapSet.size(missing) > 0 or MapSet.size(extra) > 0) and length(result.examples) < 5,
        do: [example(shape, missing, extra) | result.examples],
        else: result.examples

    %{
      result
      | shapes: result.shapes + 1,
        rows: result.rows + MapSet.size(want),
        missing: result.missing + MapSet.size(missing),
        extra: result.extra + MapSet.size(extra),
        examples: examples
    }
  end

  defp example(shape, missing, extra) do
    ids = fn set -> set |> Enum.sort() |> Enum.take(5) |> inspect() end

    "shape #{shape.id} (#{shape.table}: #{Shapes.sql(shape)}): missing #{ids.(missing)}, " <>
      "extra #{ids.(extra)}"
  end
end
