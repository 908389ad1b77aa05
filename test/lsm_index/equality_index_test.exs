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
      test "add, remove, empty?, candidates and all_shape_ids" do
        idx = unquote(new)
        assert Index.empty?(idx)
        # residuals are opaque to an index: stored, and returned with the candidates
        residual = make_ref()

        idx =
          idx
          |> Index.add_shape("k1", "s", nil)
          |> Index.add_shape("k2", "s", nil)
          |> Index.add_shape("k2", 7, residual)
          |> Index.add_shape_many(["k3", "k4"], {:shape, 9}, nil)

        refute Index.empty?(idx)
        assert Index.all_shape_ids(idx) == MapSet.new(["s", 7, {:shape, 9}])
        assert candidates(idx, "k2") == [{7, residual}, {"s", nil}]
        assert candidates(idx, "k4") == [{{:shape, 9}, nil}]
        assert candidates(idx, "absent") == []

        idx = Index.remove_shape(idx, "k1", "s", nil)
        assert Index.all_shape_ids(idx) == MapSet.new(["s", 7, {:shape, 9}])
        idx = Index.remove_shape(idx, "k2", "s", nil)
        assert Index.all_shape_ids(idx) == MapSet.new([7, {:shape, 9}])
        assert candidates(idx, "k2") == [{7, residual}]

        idx =
          idx
          |> Index.remove_shape("k2", 7, residual)
          |> Index.remove_shape_many(["k3", "k4"], {:shape, 9}, nil)
          |> Index.remove_shape("k5", "never added", nil)

        assert Index.empty?(idx)
        assert candidates(idx, "k4") == []
      end
    end
  end

  defp candidates(idx, key), do: idx |> Index.candidates(key) |> Enum.sort()

  describe "LsmEqualityIndex.candidates_many/2" do
    test "lsm: candidates_many answers like candidates, in order" do
      idx =
        LsmEqualityIndex.new()
        |> Index.add_shape("k1", :a, nil)
        |> Index.add_shape("k1", 5, :residual)
        |> Index.add_shape("k2", :b, nil)

      keys = ["k1", nil, "k3", "k2", "k1"]
      expected = Enum.map(keys, &Index.candidates(idx, &1))
      assert LsmEqualityIndex.candidates_many(idx, keys) == expected
      assert Enum.sort(Enum.at(expected, 0)) == [{5, :residual}, {:a, nil}]
    end
  end

  describe "Index.Protocol.add_shape/4 for LsmEqualityIndex" do
    test "lsm: a shape id keeps one residual" do
      idx = LsmEqualityIndex.new() |> Index.add_shape("k1", :s, nil)

      assert_raise ArgumentError, ~r/another residual/, fn ->
        Index.add_shape(idx, "k2", :s, make_ref())
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
      assert Index.candidates(idx, 5) == []
      assert Index.candidates(idx, 500) == [{:b, nil}]
    end
  end
end
