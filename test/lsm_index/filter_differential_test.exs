defmodule LsmIndex.FilterDifferentialTest do
  # 100k random add_shape / remove_shape / affected_shapes steps through :map, :lsm and :auto
  # filters, checked against a brute-force oracle that evaluates every shape of the table: the
  # Elixir evaluator of test/support (independent of the Rust engine the filter runs); now and
  # then a transaction through affected_shapes_many/2 (batched per table in the router set),
  # which must answer as affected_shapes/2 of each change, in every mode. A row
  # with a value that does not parse affects the shapes that match it and, of those reading
  # that column, the ones its index plans cannot rule out (the filter's rule, which depends
  # on how each shape is indexed): the oracle bounds it (matching ⊆ answer ⊆ matching ∪
  # reading the column) and every mode gives the same answer.
  use ExUnit.Case, async: true

  alias LsmIndex.Filter
  alias LsmIndex.Test.ReferenceWhere

  @steps 100_000
  @tables [{"public", "a"}, {"public", "b"}]
  @cols %{
    "id" => :int8,
    "user_id" => :int4,
    "small" => :int2,
    "status" => :text,
    "done" => :bool,
    "score" => :float8,
    "owner" => :uuid
  }
  @uuids ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "00000000-0000-0000-0000-000000000001"]

  describe "scenario: differential against an oracle" do
    test "map, lsm and auto agree with the oracle over #{@steps} steps" do
      :rand.seed(:exsss, {7, 11, 13})

      filters = %{
        map: Filter.new(index: :map),
        lsm: Filter.new(index: :lsm, lsm_options: [lanes: 4, overlay_limit: 16]),
        auto: Filter.new(index: :auto, auto_threshold: 8, lsm_options: [lanes: 2])
      }

      {_filters, _oracle, stats} =
        Enum.reduce(1..@steps, {filters, %{}, %{routed: 0, hits: 0}}, fn step, acc ->
          step(step, acc)
        end)

      # the workload really routes rows to shapes, not only to nothing
      assert stats.hits > stats.routed / 4
    end
  end

  defp step(step, {filters, oracle, stats}) do
    case :rand.uniform(100) do
      n when n <= 25 ->
        id = :rand.uniform(150)
        shape = %{table: Enum.random(@tables), columns: @cols, where: where(2)}
        filters = Map.new(filters, fn {k, f} -> {k, Filter.add_shape(f, id, shape)} end)
        normalized = ReferenceWhere.normalize!(shape.where, @cols)
        {filters, Map.put(oracle, id, {shape.table, normalized}), stats}

      n when n <= 35 ->
        id = :rand.uniform(150)
        filters = Map.new(filters, fn {k, f} -> {k, Filter.remove_shape(f, id)} end)
        {filters, Map.delete(oracle, id), stats}

      36 ->
        # a transaction: runs of one table, tables interleaved, one with no shape anywhere
        changes =
          for _ <- 1..:rand.uniform(120) do
            case :rand.uniform(40) do
              1 -> {:insert, {"public", "none"}, record()}
              _ -> change()
            end
          end

        for {kind, f} <- filters do
          one_by_one = Enum.map(changes, &Filter.affected_shapes(f, &1))

          assert Filter.affected_shapes_many(f, changes) == one_by_one,
                 "step #{step}, #{kind}: affected_shapes_many of #{length(changes)} changes"
        end

        {filters, oracle, stats}

      _ ->
        change = change()
        {expected, could} = expected(oracle, change)
        answers = for {kind, f} <- filters, do: {kind, Filter.affected_shapes(f, change)}
        [{_, first} | _] = answers

        for {kind, got} <- answers do
          assert MapSet.subset?(expected, got) and MapSet.subset?(got, could) and got == first,
                 "step #{step}, #{kind}: #{inspect(change)}\n" <>
                   "expected #{inspect(Enum.sort(expected))} (of those reading a column " <>
                   "that does not parse: some of #{inspect(Enum.sort(could))}), got " <>
                   "#{inspect(Enum.sort(got))}; every mode: #{inspect(answers)}"
        end

        {filters, oracle,
         %{stats | routed: stats.routed + 1, hits: stats.hits + min(MapSet.size(expected), 1)}}
    end
  end

  # -- the oracle: every shape of the table, evaluated directly --

  # {the shapes that match, and those plus the ones reading a column that does not parse}
  defp expected(oracle, {:truncate, table}) do
    all = for {id, {^table, _}} <- oracle, into: MapSet.new(), do: id
    {all, all}
  end

  defp expected(oracle, {:update, table, old, new}) do
    {a, could_a} = expected(oracle, {:insert, table, old})
    {b, could_b} = expected(oracle, {:insert, table, new})
    {MapSet.union(a, b), MapSet.union(could_a, could_b)}
  end

  defp expected(oracle, {_insert_or_delete, table, record}) do
    {row, bad} = parse(record)

    for {id, {^table, where}} <- oracle, reduce: {MapSet.new(), MapSet.new()} do
      {matching, could} ->
        reads_bad = MapSet.size(MapSet.intersection(ReferenceWhere.columns(where), bad)) > 0

        cond do
          ReferenceWhere.matches?(where, row) -> {MapSet.put(matching, id), MapSet.put(could, id)}
          reads_bad -> {matching, MapSet.put(could, id)}
          true -> {matching, could}
        end
    end
  end

  defp parse(record) do
    Enum.reduce(@cols, {%{}, MapSet.new()}, fn {col, type}, {row, bad} ->
      case Map.get(record, col) do
        nil ->
          {row, bad}

        text ->
          case ReferenceWhere.parse(type, text) do
            {:ok, v} -> {Map.put(row, col, v), bad}
            :error -> {row, MapSet.put(bad, col)}
          end
      end
    end)
  end

  # -- generators --

  defp where(depth) do
    case :rand.uniform(if depth > 0, do: 12, else: 7) do
      1 -> nil
      n when n <= 4 -> {:eq, col(), nil} |> with_literal()
      5 -> {:in, col(), []} |> with_literals()
      6 -> {Enum.random([:ne, :lt, :le, :gt, :ge]), col(), nil} |> with_literal()
      7 -> {:is_null, col()}
      8 -> {:and, [index_conjunct(), where(depth - 1)]}
      9 -> {:and, for(_ <- 1..:rand.uniform(3), do: where(depth - 1))}
      10 -> {:or, for(_ <- 1..:rand.uniform(3), do: where(depth - 1))}
      11 -> {:or, [index_conjunct(), index_conjunct()]}
      12 -> {:not, where(depth - 1)}
    end
  end

  defp index_conjunct do
    c = col()
    if :rand.uniform(2) == 1, do: with_literal({:eq, c, nil}), else: with_literals({:in, c, []})
  end

  defp col, do: Enum.random(Map.keys(@cols))

  defp with_literal({op, c, _}), do: {op, c, literal(@cols[c])}

  defp with_literals({:in, c, _}),
    do: {:in, c, for(_ <- 0..:rand.uniform(4), do: literal(@cols[c]))}

  defp literal(type) do
    if :rand.uniform(30) == 1, do: nil, else: value(type)
  end

  defp value(type) when type in [:int8, :int4], do: :rand.uniform(12) - 2
  defp value(:int2), do: :rand.uniform(5) - 3
  defp value(:text), do: Enum.random(["a", "b", "c", "7"])
  defp value(:bool), do: Enum.random([true, false])
  defp value(:float8), do: Enum.random([0.5, 1.0, 2.5, -1.0, 2])
  defp value(:uuid), do: Enum.random(@uuids)

  defp change do
    table = Enum.random(@tables)

    case :rand.uniform(20) do
      1 -> {:truncate, table}
      n when n <= 9 -> {:insert, table, record()}
      n when n <= 13 -> {:delete, table, record()}
      _ -> {:update, table, record(), record()}
    end
  end

  defp record do
    for {col, type} <- @cols, reduce: %{} do
      acc ->
        case :rand.uniform(20) do
          1 -> acc
          2 -> Map.put(acc, col, nil)
          3 -> Map.put(acc, col, unparseable(type))
          _ -> Map.put(acc, col, text(type, value(type)))
        end
    end
  end

  defp text(:bool, b), do: Enum.random(if b, do: ["t", "true", "ON"], else: ["f", "false", "0"])
  defp text(:float8, f), do: Enum.random([to_string(f), "#{f * 1.0}"])

  defp text(:uuid, u),
    do: Enum.random([u, String.upcase(u), String.replace(u, "-", "")])

  defp text(:text, s), do: s

  defp text(_int, i),
    do: Enum.random([Integer.to_string(i), "0#{i}" |> String.replace("0-", "-0")])

  defp unparseable(:text), do: "still text"
  defp unparseable(:int2), do: Enum.random(["40000", "1.5"])
  defp unparseable(:float8), do: Enum.random(["NaN", "Infinity", "1e999", "x"])
  defp unparseable(_type), do: Enum.random(["x", "", "1e3"])
end
