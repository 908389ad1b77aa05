defmodule LsmIndex.LanguageCornersTest do
  # The last corners of the language (issue 20), each answer taken from PostgreSQL 15: typed
  # literals, named enum types, and constant folding that raises only what PostgreSQL's
  # planner raises. Through the ShapeRouter and the Filter with both equality indexes.
  use ExUnit.Case, async: true

  alias LsmIndex.{Filter, ShapeRouter, Where}
  alias LsmIndex.Filter.ColumnType
  alias LsmIndex.Test.ShapeCases

  @mood {:enum, "mood", ["sad", "ok", "happy"]}
  @cols [
    {"id", :int8},
    {"i4", :int4},
    {"s", :text},
    {"d", :date},
    {"date", :date},
    {"ts", :timestamptz},
    {"e", @mood},
    {"e2", @mood},
    {"u", {:enum, ["low", "high"]}}
  ]
  @table {"public", "t"}

  # {clause, records it matches, records it does not}
  @cases [
    # typed literals, also against a column named like a type
    {"d = DATE '2024-01-01'", [%{"d" => "2024-01-01"}], [%{"d" => "2024-01-02"}, %{}]},
    {"date = '2024-01-01'", [%{"date" => "2024-01-01"}], [%{"d" => "2024-01-01"}]},
    {"date '2024-01-01' = date", [%{"date" => "2024-01-01"}], [%{"date" => "2024-01-02"}]},
    {"i4 = int4 '5'", [%{"i4" => "5"}], [%{"i4" => "6"}]},
    {"i4 IN (integer '5', bigint '6')", [%{"i4" => "6"}], [%{"i4" => "7"}]},
    {"ts >= TIMESTAMP WITH TIME ZONE '2024-01-01 05:00+05'",
     [%{"ts" => "2024-01-01 00:00:00+00"}], [%{"ts" => "2023-12-31 23:59:59+00"}]},
    {"s = double precision '1e3'::text", [%{"s" => "1000"}], [%{"s" => "1e3"}]},
    # named enums: casts, typed literals, declaration order, text to the enum
    {"e = 'ok'::mood", [%{"e" => "ok"}], [%{"e" => "sad"}, %{}]},
    {"e > mood 'sad'", [%{"e" => "ok"}, %{"e" => "happy"}], [%{"e" => "sad"}]},
    {"e IN (CAST('happy' AS mood), 'sad')", [%{"e" => "happy"}], [%{"e" => "ok"}]},
    {"s::mood = e2", [%{"s" => "ok", "e2" => "ok"}], [%{"s" => "ok", "e2" => "sad"}]},
    {"u = 'high'", [%{"u" => "high"}], [%{"u" => "low"}]},
    # folding stops where PostgreSQL's planner stops
    {"coalesce(NULL::int4, 1, 1 / 0) = i4", [%{"i4" => "1"}], [%{"i4" => "2"}]},
    {"i4 = 1 OR (false AND 1 / 0 = 1)", [%{"i4" => "1"}], [%{"i4" => "2"}]},
    {"(true OR 1 / 0 = 1) AND e = 'sad'", [%{"e" => "sad"}], [%{"e" => "ok"}]},
    {"i4 = 3 OR (i4 + NULL) IS NULL OR 1 / 0 = 1", [%{"i4" => "5"}, %{}], []},
    {"i4 = 2 AND 0 NOT BETWEEN 1 AND 1 / 0", [%{"i4" => "2"}], [%{"i4" => "1"}]}
  ]

  @refused [
    {"d = DATE 5", "found number 5"},
    {"e = 'angry'::mood", "a literal that is a valid mood"},
    {"e = mood 'angry'", "a literal that is a valid mood"},
    {"e = s", "a value comparable with mood"},
    {"i4::mood = 'ok'", "a cast PostgreSQL has: int4 to mood"},
    {"u = 'low'::enum", "a supported type"},
    {"coalesce(NULL::int4, 1 / 0, 1) = i4", "division by zero"},
    {"1 / 0 = 1 AND false", "division by zero"},
    {"false AND i4 = 'abc'", "expected a value of its type"}
  ]

  # the shared case runner takes {sql, params, yes, no}: these cases have no parameters
  @with_params for {sql, yes, no} <- @cases, do: {sql, [], yes, no}

  defp filter(mode), do: ShapeCases.filter(mode, @table, @cols, @with_params)
  defp router(opts \\ []), do: ShapeCases.router(@table, @cols, @with_params, opts)
  defp check(affected), do: ShapeCases.check(@with_params, affected)

  describe "ShapeRouter" do
    test "routes typed literals, named enums and lazily folded constants" do
      r = router()
      check(&ShapeRouter.route(r, {:insert, &1}))

      ShapeCases.assert_router_refuses(r, @refused)
    end

    @tag :tmp_dir
    test "a persistent router reopens with its named enums; another name is another table",
         %{tmp_dir: dir} do
      path = Path.join(dir, "router")
      r = router(path: path)
      :ok = ShapeRouter.close(r)
      {:ok, r} = ShapeRouter.new("t", @table, @cols, path: path)
      check(&ShapeRouter.route(r, {:insert, &1}))
      :ok = ShapeRouter.close(r)

      renamed =
        Enum.map(@cols, fn
          {name, {:enum, "mood", labels}} -> {name, {:enum, "feeling", labels}}
          col -> col
        end)

      assert {:error, {:invalid_config, _}} = ShapeRouter.new("t", @table, renamed, path: path)
    end
  end

  for mode <- [:map, :lsm] do
    describe "Filter, index: #{inspect(mode)}" do
      @describetag mode: mode

      test "filters typed literals, named enums and lazily folded constants", %{mode: mode} do
        f = filter(mode)
        check(&Filter.affected_shapes(f, {:insert, @table, &1}))

        ShapeCases.assert_filter_refuses(f, @table, @cols, @refused)
      end

      test "a cast names an enum of a column the clause does not read", %{mode: mode} do
        shape = %{table: @table, columns: @cols, where: "s::mood > 'sad'"}
        f = Filter.add_shape(Filter.new(index: mode), 1, shape)
        assert Filter.affected_shapes(f, {:insert, @table, %{"s" => "ok"}}) == MapSet.new([1])
        assert Filter.affected_shapes(f, {:insert, @table, %{"s" => "sad"}}) == MapSet.new()
        # not a label: an evaluation error on the row, which routes the change to the shape
        assert Filter.affected_shapes(f, {:insert, @table, %{"s" => "angry"}}) == MapSet.new([1])
      end
    end
  end

  # Gaps the PostgreSQL oracle's templates test found (issue 24; its @known_gaps
  # :like_null_pattern, :time_with_date and :datetime_digits), each answer from PostgreSQL 15: we refuse these
  # clauses, PostgreSQL takes them. Skipped until the engine does; fixing one, drop the skip
  # and the oracle's @known_gaps entry.
  @gap_cols [{"id", :int8}, {"s", :text}, {"i4", :int4}, {"tm", :time}, {"d", :date}] ++
              [{"ts", :timestamp}]
  @gap_cases [
    # a NULL LIKE pattern makes the LIKE NULL: no row, unless another OR branch holds
    {"s LIKE $1 OR i4 > 1", [nil], [%{"s" => "a", "i4" => "2"}],
     [%{"s" => "a", "i4" => "1"}, %{"s" => "a"}]},
    {"s LIKE NULL OR i4 > 1", [], [%{"s" => "a", "i4" => "2"}], [%{"s" => "a", "i4" => "1"}]},
    {"s NOT ILIKE $1", [nil], [], [%{"s" => "a"}, %{}]},
    # the time of a timestamp's text (its zone ignored), and of '10:30 PM'
    {"tm = $1", ["2024-01-01 10:30:00+05:30"], [%{"tm" => "10:30:00"}], [%{"tm" => "05:00:00"}]},
    {"tm BETWEEN '1999-12-31 10:00' AND $1", ["10:30 PM"], [%{"tm" => "22:30:00"}],
     [%{"tm" => "22:30:01"}, %{"tm" => "09:59:59"}]},
    # digits alone: an ISO date without its dashes (8 or 6 digits), a time without its colons
    {"d = $1", ["20240101"], [%{"d" => "2024-01-01"}], [%{"d" => "2024-01-02"}]},
    {"d >= '240101'", [], [%{"d" => "2024-01-01"}], [%{"d" => "2023-12-31"}]},
    {"ts = $1", ["20240101T103000"], [%{"ts" => "2024-01-01 10:30:00"}],
     [%{"ts" => "2024-01-01 00:00:00"}]},
    {"tm > '103000'", [], [%{"tm" => "10:30:01"}], [%{"tm" => "10:30:00"}]}
  ]

  describe "gaps the PostgreSQL oracle's templates test found" do
    @describetag skip: "a NULL LIKE pattern, datetime spellings: refused (issue 24)"

    test "ShapeRouter routes them as PostgreSQL answers" do
      r = ShapeCases.router(@table, @gap_cols, @gap_cases)
      ShapeCases.check(@gap_cases, &ShapeRouter.route(r, {:insert, &1}))
    end

    test "Filter routes them as PostgreSQL answers" do
      for mode <- [:map, :lsm] do
        f = ShapeCases.filter(mode, @table, @gap_cols, @gap_cases)
        ShapeCases.check(@gap_cases, &Filter.affected_shapes(f, {:insert, @table, &1}))
      end
    end
  end

  describe "Where.parse/2" do
    test "a named enum's literals come back as labels, its casts as SQL that parses back" do
      assert {:ok, {:eq, "e", "ok"}} = Where.parse("e = mood 'ok'", @cols)
      assert {:ok, {:sql, sql}} = Where.parse("s::mood = 'ok'", @cols)
      assert sql =~ ~s(::"mood")
      assert {:ok, {:sql, ^sql}} = Where.parse(sql, @cols)
      assert {:ok, {:const, false}} = Where.parse("false AND 1 / 0 = 1", @cols)
    end
  end

  describe "ColumnType.columns!/1" do
    test "takes named enums; one name has one list of labels" do
      pairs = [{"e", @mood}, {"f", @mood}, {"g", {:enum, "Other", ["x"]}}]
      assert ColumnType.columns!(pairs) == pairs

      for bad <-
            [{:enum, "", ["a"]}, {:enum, "a\0b", ["a"]}, {:enum, :mood, ["a"]}] ++
              [{:enum, "mood", []}, {:enum, "mood", ["a", "a"]}] do
        assert_raise ArgumentError, ~r/column "e" has type .*\{:enum, name, labels\}/, fn ->
          ColumnType.columns!([{"e", bad}])
        end
      end

      assert_raise ArgumentError, ~r/enum type "mood" has one list of labels/, fn ->
        ColumnType.columns!([{"e", @mood}, {"f", {:enum, "mood", ["sad"]}}])
      end

      assert_raise ArgumentError, ~r/enum type "mood"/, fn ->
        ShapeRouter.new("t", @table, %{"e" => @mood, "f" => {:enum, "mood", ["x"]}})
      end
    end
  end
end
