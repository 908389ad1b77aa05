defmodule LsmIndex.ShapeRouterDifferentialTest do
  # The same random shapes (SQL text) and random changes through ShapeRouter.route/2 and
  # Filter.affected_shapes/2 with :map indexes: identical answers over more than 100k changes,
  # with shape churn, updates that move rows between values, NULLs and unparseable values.
  use ExUnit.Case, async: true

  alias LsmIndex.{Filter, ShapeRouter}

  @changes 120_000
  @table {"public", "todos"}
  @cols [
    {"id", :int8},
    {"user_id", :int8},
    {"status", :text},
    {"score", :float8},
    {"active", :bool},
    {"uid", :uuid},
    {"note", :text},
    {"small", :int2}
  ]
  @statuses ["open", "closed", "late", "Open", "ünï"]
  @uuids ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "A0EEBC999C0B4EF8BB6D6BB9BD380A12"]

  describe "route/2" do
    test "router and filter agree over #{@changes} changes" do
      :rand.seed(:exsss, {3, 5, 8})

      {:ok, router} =
        ShapeRouter.new("tenant", @table, @cols, index: [lanes: 4, overlay_limit: 64])

      filter = Filter.new(index: :map)
      shape_cols = Map.new(@cols)

      {_filter, stats} =
        Enum.reduce(1..@changes, {filter, %{hits: 0, fanout: 0, shapes: 0}}, fn step, {f, st} ->
          f = churn(router, f, shape_cols)
          change = change()
          expected = f |> Filter.affected_shapes(with_table(change)) |> Enum.sort()
          got = ShapeRouter.route(router, change)

          if got != expected,
            do:
              flunk(
                "change #{step}: #{inspect(change)}\nfilter: #{inspect(expected)}\n" <>
                  "router: #{inspect(got)}\nshapes: #{inspect(f.shapes, limit: :infinity)}"
              )

          hit = if got == [], do: 0, else: 1
          {f, %{st | hits: st.hits + hit, fanout: st.fanout + length(got)}}
        end)

      m = ShapeRouter.metrics(router)
      assert m.changes_routed == @changes
      # the workload routes rows to shapes, checks residuals, and meets unparseable values
      assert stats.hits > @changes / 4
      assert m.candidates > 0 and m.predicate_evaluations > 0 and m.unparseable_rows > 0
      assert m.shapes_indexed > 0 and m.shapes_scanned > 0
    end
  end

  describe "route_many/2" do
    test "route_many answers as route does, across NIF calls" do
      :rand.seed(:exsss, {1, 2, 3})
      {:ok, router} = ShapeRouter.new("tenant", @table, @cols)
      for id <- 1..200, do: :ok = ShapeRouter.add_shape(router, id, shape_sql())
      changes = for _ <- 1..20_000, do: change()

      assert ShapeRouter.route_many(router, changes) ==
               Enum.map(changes, &ShapeRouter.route(router, &1))
    end
  end

  # One shape operation every ~12 changes: add (or replace) a random shape, or remove one.
  defp churn(router, filter, shape_cols) do
    case :rand.uniform(24) do
      1 ->
        id = :rand.uniform(120)
        :ok = ShapeRouter.remove_shape(router, id)
        Filter.remove_shape(filter, id)

      2 ->
        id = :rand.uniform(120)
        sql = shape_sql()
        assert :ok == ShapeRouter.add_shape(router, id, sql), sql
        Filter.add_shape(filter, id, %{table: @table, columns: shape_cols, where: sql})

      _ ->
        filter
    end
  end

  defp with_table(:truncate), do: {:truncate, @table}
  defp with_table({:update, old, new}), do: {:update, @table, old, new}
  defp with_table({kind, rec}), do: {kind, @table, rec}

  # -- random shapes, as SQL text --

  defp shape_sql do
    case :rand.uniform(5) do
      1 -> clause(2)
      2 -> "user_id = #{:rand.uniform(12) - 1}"
      3 -> "user_id IN (#{int()}, #{int()}) AND #{clause(1)}"
      _ -> "#{clause(0)} AND #{clause(2)}"
    end
  end

  defp clause(depth) do
    {name, _} = col = Enum.random(@cols)

    if depth > 0 and :rand.uniform(3) == 1 do
      op = Enum.random(["AND", "OR"])
      neg = if :rand.uniform(6) == 1, do: "NOT ", else: ""
      "#{neg}(#{clause(depth - 1)} #{op} #{clause(depth - 1)})"
    else
      case {:rand.uniform(10), col} do
        {n, _} when n <= 4 ->
          "#{name} = #{literal(col)}"

        {5, _} ->
          list = Enum.map_join(1..:rand.uniform(3), ", ", fn _ -> literal(col) end)
          "#{name} #{Enum.random(["", "", "NOT "])}IN (#{list})"

        {6, _} ->
          "#{name} #{Enum.random(["<>", "<", "<=", ">", ">=", "!="])} #{literal(col)}"

        {7, _} ->
          "#{name} IS #{Enum.random(["", "NOT "])}NULL"

        {8, {_, :text}} ->
          op = Enum.random(["LIKE", "ILIKE", "NOT LIKE", "NOT ILIKE"])
          "#{name} #{op} '#{Enum.random(["o%", "%e%", "_pen", "a\\%", "%Ï", "%"])}'"

        {9, {_, :bool}} ->
          Enum.random([name, "NOT #{name}"])

        _ ->
          "user_id = #{int()}"
      end
    end
  end

  defp int, do: :rand.uniform(12) - 1

  defp literal({_, type}) do
    if :rand.uniform(30) == 1, do: "NULL", else: literal(type)
  end

  defp literal(t) when t in [:int8, :int2], do: Integer.to_string(int())
  defp literal(:text), do: "'#{Enum.random(@statuses ++ ["it''s"])}'"
  defp literal(:float8), do: Enum.random(["0.5", "1", "-2.25", "'NaN'", "'Infinity'", "3e0"])
  defp literal(:bool), do: Enum.random(["TRUE", "FALSE", "'t'", "'off'"])
  defp literal(:uuid), do: "'#{Enum.random(@uuids)}'::uuid"

  # -- random changes --

  defp change do
    case :rand.uniform(20) do
      1 ->
        :truncate

      n when n <= 8 ->
        {:insert, record()}

      n when n <= 10 ->
        {:delete, record()}

      _ ->
        old = record()
        # most updates keep most columns; some move the row to another user_id
        new =
          Map.new(old, fn {k, v} ->
            if k != "unknown_column" and :rand.uniform(3) == 1, do: {k, cell(k)}, else: {k, v}
          end)

        {:update, old, new}
    end
  end

  defp record do
    @cols
    |> Enum.filter(fn _ -> :rand.uniform(12) > 1 end)
    |> Map.new(fn {name, _} -> {name, cell(name)} end)
    |> Map.put("unknown_column", "ignored")
  end

  defp cell(name) do
    type = @cols |> List.keyfind(name, 0) |> elem(1)

    cond do
      :rand.uniform(10) == 1 -> nil
      :rand.uniform(50) == 1 -> Enum.random(["not a value", "99999999999999999999", ""])
      true -> text(type)
    end
  end

  defp text(t) when t in [:int8, :int2],
    do: Enum.random([Integer.to_string(int()), "0#{int()}", "-0"])

  defp text(:text), do: Enum.random(@statuses ++ ["it's", "ÜNÏ", "abc", "a%"])
  defp text(:float8), do: Enum.random(["0.5", "1.0", "-2.25", "NaN", "Infinity", "-0", "3"])
  defp text(:bool), do: Enum.random(["t", "false", "yes", "0", "on"])
  defp text(:uuid), do: @uuids |> Enum.random() |> String.downcase()
end
