defmodule LsmIndex.Filter.PredicateTest do
  # The filter's bridge to the Rust engine, directly: compiled clauses, value keys, parsed
  # records and the one evaluation call per record.
  use ExUnit.Case, async: true

  alias LsmIndex.Filter.Predicate

  @cols [{"a", :int8}, {"b", :int4}, {"f", :float8}, {"s", :text}, {"u", :uuid}, {"d", :bool}]
  @uuid "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"

  defp keys(where), do: Predicate.compile!(where, @cols).plans

  describe "compile!/2" do
    test "plans, residual and referenced columns" do
      assert %{plans: [{"a", [_]}], residual: nil, columns: ["a"]} =
               Predicate.compile!("a = 7", @cols)

      # the most selective equality conjunct is the plan, the rest the residual
      assert %{plans: [{"s", [_, _]}], residual: residual, columns: ["a", "s"]} =
               Predicate.compile!("a > 1 AND s IN ('x', 'y', 'x')", @cols)

      assert is_reference(residual)
      # an equality in every OR branch: a plan per column, the whole clause as residual
      assert %{plans: [{"a", [_]}, {"b", [_, _]}], residual: ref, columns: ["a", "b", "f"]} =
               Predicate.compile!("a = 1 OR (b IN (2, 3) AND f > 0)", @cols)

      assert is_reference(ref)

      assert %{plans: [], residual: ref, columns: ["s"]} =
               Predicate.compile!({:like, "s", "x%"}, @cols)

      assert is_reference(ref)
      assert %{plans: [], residual: nil, columns: []} = Predicate.compile!(nil, @cols)
    end

    test "equal SQL values are equal keys whatever their text" do
      assert keys("a = ' 7'") == keys("a = 7")
      assert keys("a = 7") == keys({:eq, "a", 7})
      assert keys("f = '-0'") == keys("f = 0")
      assert keys({:eq, "f", -0.0}) == keys({:eq, "f", 0})
      assert keys("f = 'NaN'") == keys({:eq, "f", :nan})
      assert keys("u = '{A0EEBC999C0B4EF8BB6D6BB9BD380A11}'") == keys({:eq, "u", @uuid})
      assert keys("d = 'yes'") == keys({:eq, "d", true})
      refute keys("a = 7") == keys("s = '7'")
    end

    test "a long clause compiles on a dirty scheduler, with the same result" do
      tree = {:in, "a", Enum.to_list(1..5_000)}
      {sql, _} = LsmIndex.Filter.Expr.to_sql!(tree)
      assert byte_size(sql) > 16_384
      assert %{plans: [{"a", keys}], residual: nil} = Predicate.compile!(tree, @cols)
      assert length(keys) == 5_000
      assert hd(keys) == hd(elem(hd(Predicate.compile!("a = 1", @cols).plans), 1))
    end

    test "errors as LsmIndex.Where.parse/2 reports them; compile!/2 raises" do
      assert {:error, {:invalid_where, 4, _}} = Predicate.compile("a = 'x'", @cols)
      assert {:error, {:invalid_where, 0, _}} = Predicate.compile(<<255>>, @cols)

      assert_raise ArgumentError, ~r/WHERE "a = 'x'": at byte 4: /, fn ->
        Predicate.compile!("a = 'x'", @cols)
      end

      assert_raise ArgumentError, fn -> Predicate.compile!("a = 1", [{"a", :blob}]) end
    end
  end

  describe "row!/2 and eval/3" do
    test "a record parsed once: keys of the indexed columns, bad columns, then every residual" do
      schema = Predicate.schema(Map.new(@cols), ["u", "a"])
      %{residual: gt} = Predicate.compile!("a > 5 AND s LIKE 'x%'", @cols)
      %{residual: null} = Predicate.compile!({:is_null, "f"}, @cols)
      %{plans: [{"a", [key7]}]} = Predicate.compile!("a = 7", @cols)
      %{plans: [{"u", [uuid_key]}]} = Predicate.compile!({:eq, "u", @uuid}, @cols)

      record = %{"a" => " 7", "s" => "xy", "u" => String.upcase(@uuid), "b" => "x", "f" => nil}
      {row, keys, bad} = Predicate.row!(schema, record)
      assert keys == [uuid_key, key7]
      assert bad == ["b"]
      checks = [{:gt, gt}, {:null, null}, {:gt2, gt}]
      assert {matched, []} = Predicate.eval(row, checks, 3)
      assert Enum.sort(matched) == [:gt, :gt2, :null]

      {row, keys, bad} = Predicate.row!(schema, %{"a" => "1", "f" => "1.5"})
      assert keys == [nil, keys("a = 1") |> hd() |> elem(1) |> hd()]
      assert bad == []
      assert Predicate.eval(row, checks, 3) == {[], []}
      assert Predicate.eval(row, [], 0) == {[], []}
    end

    test "values that are neither text nor nil raise ArgumentError" do
      schema = Predicate.schema(%{"a" => :int8}, [])

      assert_raise ArgumentError, ~r/Postgres text or nil, got 1 for "a"/, fn ->
        Predicate.row!(schema, %{"a" => 1})
      end

      assert_raise ArgumentError, fn -> Predicate.row!(schema, [{"a", "1"}]) end
      # columns no shape refers to are not read
      assert {_row, [], []} = Predicate.row!(schema, %{"z" => 1})
    end

    test "a residual that cannot be evaluated is told apart from a false one" do
      # a residual reading a column the row's schema lacks: an evaluation error
      %{residual: residual} = Predicate.compile!("a > 1", @cols)
      {row, [], []} = Predicate.row!(Predicate.schema(%{"s" => :text}, []), %{"a" => "5"})
      assert Predicate.eval(row, [{:x, residual}], 1) == {[], [:x]}
    end

    test "many checks run on a dirty scheduler, with the same answers" do
      %{residual: residual} = Predicate.compile!("a > 1", @cols)
      {row, [], []} = Predicate.row!(Predicate.schema(%{"a" => :int8}, []), %{"a" => "5"})
      checks = for i <- 1..2_000, do: {i, residual}
      assert {matched, []} = Predicate.eval(row, checks, 2_000)
      assert Enum.sort(matched) == Enum.to_list(1..2_000)
    end
  end
end
