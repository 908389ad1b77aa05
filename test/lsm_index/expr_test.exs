defmodule LsmIndex.Filter.ExprTest do
  use ExUnit.Case, async: true

  alias LsmIndex.Filter.Expr
  alias LsmIndex.Where

  doctest LsmIndex.Filter.Expr

  @uuid "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
  @cols [
    {"a", :int8},
    {"f", :float8},
    {"b", :bool},
    {"s", :text},
    {~s(we"ird 'col'), :text},
    {"u", :uuid}
  ]

  describe "to_sql!/1" do
    test "renders every literal kind; the engine parses it back to the same tree" do
      tree =
        {:and,
         [
           {:eq, "a", -9_223_372_036_854_775_808},
           {:ne, "f", 1.5},
           {:in, "f", [:nan, :infinity, :neg_infinity, -0.25, 1.0e300]},
           {:eq, "b", false},
           {:eq, ~s(we"ird 'col'), ~s(it's "quoted" \\ text)},
           {:eq, "u", @uuid},
           {:not, {:is_null, "s"}},
           {:like, "s", "50\\%'s"},
           {:not, {:ilike, "s", "İstanbul"}},
           {:or, [{:const, nil}, {:const, false}, {:eq, "a", nil}]},
           {:not, {:and, [{:const, true}, {:lt, "a", 3}]}}
         ]}

      {sql, _spans} = Expr.to_sql!(tree)

      expected = [
        ~S|"a" = -9223372036854775808|,
        ~S|"f" <> '1.5'|,
        ~S|"f" IN ('NaN', 'Infinity', '-Infinity', '-0.25', '1.0e300')|,
        ~S|"b" = FALSE|,
        ~S|"we""ird 'col'" = 'it''s "quoted" \ text'|,
        ~S|"u" = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'|,
        ~S|NOT "s" IS NULL|,
        ~S|"s" LIKE '50\%''s'|,
        ~S|NOT "s" ILIKE 'İstanbul'|,
        ~S|(NULL OR FALSE OR "a" = NULL)|,
        ~S|NOT (TRUE AND "a" < 3)|
      ]

      assert sql == Enum.join(expected, " AND ")
      assert Where.parse(sql, @cols) == {:ok, tree}
    end

    test "trees of the engine's own parser render to clauses it reads back unchanged" do
      for sql <- [
            "a = 1 OR a = 2 AND NOT b",
            "NOT (a = 1 OR s LIKE 'x%') AND f >= '-Infinity'",
            "NOT NOT b",
            "a NOT IN (1, NULL) OR NOT (s IS NULL OR u = 'A0EEBC999C0B4EF8BB6D6BB9BD380A11')"
          ] do
        {:ok, tree} = Where.parse(sql, @cols)
        {rendered, _} = Expr.to_sql!(tree)
        assert Where.parse(rendered, @cols) == {:ok, tree}, "#{sql} -> #{rendered}"
      end
    end

    test "empty lists render as SQL means them" do
      assert {"TRUE", []} = Expr.to_sql!(nil)
      assert {"TRUE", []} = Expr.to_sql!({:and, []})
      assert {"FALSE", []} = Expr.to_sql!({:or, []})
      assert {~s[("a" IS NULL AND NULL)], [_]} = Expr.to_sql!({:in, "a", []})
    end

    test "a malformed node raises ArgumentError naming it" do
      for {tree, message} <- [
            {{:regex, "a", "x"}, ~r/node \{:regex, "a", "x"\} is not a WHERE expression/},
            {{:and, [{:eq, "a", 1} | :x]}, ~r/list of expressions/},
            {{:or, :x}, ~r/list of expressions/},
            {{:in, "a", :x}, ~r/list of literals/},
            {{:in, "a", [1 | 2]}, ~r/list of literals/},
            {{:eq, "a", {1}}, ~r/literal \{1\}, not a SQL literal/},
            {{:eq, "a", :other}, ~r/not a SQL literal/},
            {{:eq, :a, 1}, ~r/not a column name/},
            {{:like, "s", 1}, ~r/text pattern/},
            {{:const, 1}, ~r/not a WHERE expression/},
            {{:not, {:eq, "s", <<0xFF>>}}, ~r/not UTF-8/}
          ] do
        assert_raise ArgumentError, message, fn -> Expr.to_sql!(tree) end
      end
    end
  end

  describe "node_at/2" do
    test "finds the leaf a byte offset lies in" do
      {_sql, spans} = Expr.to_sql!({:or, [{:eq, "a", 1}, {:is_null, "s"}]})
      assert Expr.node_at(spans, 0) == {:eq, "a", 1}
      assert Expr.node_at(spans, 6) == {:eq, "a", 1}
      assert Expr.node_at(spans, 8) == nil
      assert Expr.node_at(spans, 11) == {:is_null, "s"}
    end
  end
end
