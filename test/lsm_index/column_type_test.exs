defmodule LsmIndex.Filter.ColumnTypeTest do
  use ExUnit.Case, async: true

  alias LsmIndex.{Filter, ShapeRouter, Where}
  alias LsmIndex.Filter.ColumnType

  describe "columns!/1" do
    test "takes {name, type} pairs as a list (kept in order) or a map" do
      assert ColumnType.columns!([{"b", :int8}, {"a", :text}]) == [{"b", :int8}, {"a", :text}]
      assert ColumnType.columns!(%{"a" => :uuid}) == [{"a", :uuid}]
      assert ColumnType.columns!([]) == []
    end

    test "takes every named type and enums of distinct labels" do
      assert ColumnType.types() ==
               ~w(int2 int4 int8 float4 float8 numeric bool text varchar uuid date time timestamp
                  timestamptz)a

      pairs = for t <- ColumnType.types(), do: {"c_#{t}", t}
      pairs = pairs ++ [{"mood", {:enum, ["sad", "ok", "happy"]}}]
      assert ColumnType.columns!(pairs) == pairs

      for bad <- [{:enum, []}, {:enum, ["a", "a"]}, {:enum, [:a]}, {:enum, "a"}, :enum] do
        assert_raise ArgumentError, ~r/column "e" has type .*\{:enum, labels\}/, fn ->
          ColumnType.columns!([{"e", bad}])
        end
      end
    end

    test "refuses anything else, naming the mistake" do
      for {bad, message} <- [
            {nil, ~r/pairs \(a list or a map\), got: nil/},
            {{"a", :int8}, ~r/pairs \(a list or a map\)/},
            {[{:a, :int8}], ~r/pairs with string names, got: \{:a, :int8\}/},
            {[:a], ~r/pairs with string names, got: :a/},
            {%{a: :int8}, ~r/string names/},
            {[{"a", :blob}], ~r/column "a" has type :blob, expected one of/},
            {[{"a", :int8}, {"a", :text}], ~r/column names must be unique, got: \["a", "a"\]/}
          ] do
        assert_raise ArgumentError, message, fn -> ColumnType.columns!(bad) end
      end
    end

    test "is the one check of Where.parse/2, Filter.add_shape/3 and ShapeRouter.new/4" do
      for {bad, message} <- [
            {:columns, ~r/a list or a map/},
            {[{:a, :int8}], ~r/string names/},
            {%{"a" => :blob}, ~r/type :blob/},
            {[{"a", :int8}, {"a", :text}], ~r/unique/}
          ] do
        assert_raise ArgumentError, message, fn -> Where.parse("a = 1", bad) end
        shape = %{table: :t, columns: bad, where: nil}
        assert_raise ArgumentError, message, fn -> Filter.add_shape(Filter.new(), 1, shape) end
        assert_raise ArgumentError, message, fn -> ShapeRouter.new("t", :t, bad) end
      end
    end

    test "a filter's shape takes its columns as a list too" do
      shape = %{table: :t, columns: [{"a", :int8}], where: "a = 1"}
      f = Filter.add_shape(Filter.new(), 1, shape)
      assert Filter.affected_shapes(f, {:insert, :t, %{"a" => "1"}}) == MapSet.new([1])
    end
  end
end
