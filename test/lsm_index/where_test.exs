defmodule LsmIndex.WhereTest do
  use ExUnit.Case, async: true

  alias LsmIndex.Where

  doctest LsmIndex.Where

  describe "parse/2" do
    test "Where.parse returns the filter's trees" do
      cols = [{"a", :int8}, {"s", :text}, {"f", :float8}, {"u", :uuid}, {"b", :bool}]

      for {sql, tree} <- [
            {"a <> 1", {:ne, "a", 1}},
            {"1 < a", {:gt, "a", 1}},
            {"a NOT IN (1, NULL)", {:not, {:in, "a", [1, nil]}}},
            {"s IS NOT NULL", {:not, {:is_null, "s"}}},
            {"s NOT LIKE 'x\\%'", {:not, {:like, "s", "x\\%"}}},
            {"s ILIKE 'it''s'", {:ilike, "s", "it's"}},
            {"f >= '-Infinity' OR f = 'NaN'",
             {:or, [{:ge, "f", :neg_infinity}, {:eq, "f", :nan}]}},
            {"f = 2", {:eq, "f", 2.0}},
            {"u = 'A0EEBC999C0B4EF8BB6D6BB9BD380A12'::uuid",
             {:eq, "u", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12"}},
            {"b", {:eq, "b", true}},
            {"a = 1 OR a = 2 AND NOT b",
             {:or, [{:eq, "a", 1}, {:and, [{:eq, "a", 2}, {:not, {:eq, "b", true}}]}]}},
            {"NULL", {:const, nil}}
          ] do
        assert Where.parse(sql, cols) == {:ok, tree}, sql
      end

      assert {:error, {:invalid_where, 4, _}} = Where.parse("a = 'x'", cols)
      assert_raise ArgumentError, fn -> Where.parse(1, cols) end
      assert_raise ArgumentError, fn -> Where.parse("a = 1", [{"a", :nope}]) end
    end
  end

  describe "parse!/2" do
    test "returns the tree; a clause that does not parse raises LsmIndex.Error" do
      cols = [{"a", :int8}]
      assert Where.parse!("a = 1", cols) == {:eq, "a", 1}

      error = assert_raise LsmIndex.Error, ~r/at byte 4/, fn -> Where.parse!("a = 'x'", cols) end

      assert {:invalid_where, 4, _} = error.reason
      assert_raise ArgumentError, fn -> Where.parse!(1, cols) end
      assert_raise ArgumentError, fn -> Where.parse!("a = 1", [{"a", :nope}]) end
    end
  end
end
