defmodule LsmIndex.Filter.EqualityIndexTest do
  # The Index.Protocol contract, directly, on both implementations.
  use ExUnit.Case, async: true

  alias LsmIndex.Filter.{EqualityIndex, LsmEqualityIndex}
  alias LsmIndex.Filter.Index.Protocol, as: Index

  for {name, new} <- [
        map: quote(do: EqualityIndex.new()),
        lsm: quote(do: LsmEqualityIndex.new(lanes: 2, overlay_limit: 2))
      ] do
    describe "scenario: the Index.Protocol contract, #{name}" do
      test "add, remove, empty? and all_shape_ids" do
        idx = unquote(new)
        assert Index.empty?(idx)
        residual = {:eq, "done", true}

        idx =
          idx
          |> Index.add_shape(1, "s", nil)
          |> Index.add_shape(2, "s", nil)
          |> Index.add_shape(2, 7, residual)
          |> Index.add_shape_many([3, 4], {:shape, 9}, nil)

        refute Index.empty?(idx)
        assert Index.all_shape_ids(idx) == MapSet.new(["s", 7, {:shape, 9}])
        row = %{"v" => 2, "done" => true}
        assert Index.affected_shapes(idx, "v", row, %{}) == MapSet.new(["s", 7])
        assert Index.affected_shapes(idx, "v", %{row | "done" => nil}, %{}) == MapSet.new(["s"])
        assert Index.affected_shapes(idx, "v", %{"v" => nil}, %{}) == MapSet.new()
        assert Index.affected_shapes(idx, "v", %{"v" => 4}, %{}) == MapSet.new([{:shape, 9}])

        idx = Index.remove_shape(idx, 1, "s", nil)
        assert Index.all_shape_ids(idx) == MapSet.new(["s", 7, {:shape, 9}])
        idx = Index.remove_shape(idx, 2, "s", nil)
        assert Index.all_shape_ids(idx) == MapSet.new([7, {:shape, 9}])
        assert Index.affected_shapes(idx, "v", row, %{}) == MapSet.new([7])

        idx =
          idx
          |> Index.remove_shape(2, 7, residual)
          |> Index.remove_shape_many([3, 4], {:shape, 9}, nil)
          |> Index.remove_shape(5, "never added", nil)

        assert Index.empty?(idx)
        assert Index.affected_shapes(idx, "v", %{"v" => 4}, %{}) == MapSet.new()
      end
    end
  end

  describe "LsmEqualityIndex.affected_shapes_many/3" do
    test "lsm: affected_shapes_many answers like affected_shapes, in order" do
      idx =
        LsmEqualityIndex.new()
        |> Index.add_shape(1, :a, nil)
        |> Index.add_shape(1, 5, {:eq, "x", 1})
        |> Index.add_shape(2, :b, nil)

      rows = [%{"v" => 1, "x" => 1}, %{"v" => nil}, %{"v" => 3}, %{"v" => 2}, %{"v" => 1}]
      expected = Enum.map(rows, &Index.affected_shapes(idx, "v", &1, %{}))
      assert LsmEqualityIndex.affected_shapes_many(idx, "v", rows) == expected
      assert Enum.at(expected, 0) == MapSet.new([:a, 5])
    end
  end

  describe "Index.Protocol.add_shape/4 for LsmEqualityIndex" do
    test "lsm: a shape id keeps one residual" do
      idx = LsmEqualityIndex.new() |> Index.add_shape(1, :s, nil)

      assert_raise ArgumentError, ~r/another residual/, fn ->
        Index.add_shape(idx, 2, :s, {:is_null, "x"})
      end
    end
  end

  describe "LsmEqualityIndex.drop_shape/3" do
    test "lsm: drop_shape removes every value at once and recycles the handle" do
      idx = LsmEqualityIndex.new() |> Index.add_shape_many(Enum.to_list(1..100), :a, nil)
      idx = LsmEqualityIndex.drop_shape(idx, :a, nil)
      assert Index.empty?(idx)
      idx = Index.add_shape(idx, 500, :b, nil)
      assert [handle] = Map.values(idx.interned)
      assert handle == 2_147_483_648
      assert Index.affected_shapes(idx, "v", %{"v" => 5}, %{}) == MapSet.new()
      assert Index.affected_shapes(idx, "v", %{"v" => 500}, %{}) == MapSet.new([:b])
    end
  end
end
