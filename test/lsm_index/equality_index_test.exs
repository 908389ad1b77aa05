defmodule LsmIndex.Filter.EqualityIndexTest do
  # The Index.Protocol contract, directly, on both implementations (affected_shapes/4, the
  # host's lookup: equality_index_affected_test.exs).
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

  describe "scenario: lsm against map, random adds, removes and drops" do
    # The per-shape bookkeeping of the LSM index (key counts in Rust; residuals and interned
    # ids on the BEAM, forgotten with a shape's last key) against the map index: pairs added
    # twice, absent pairs removed, a shape's last key removed or the whole shape dropped,
    # interned handles recycled; integer, string and tuple shape ids, with and without
    # residuals.
    @keys for i <- 1..24, do: "k#{i}"
    @shapes Enum.to_list(0..11) ++ Enum.map(0..7, &"s#{&1}") ++ [{:t, 1}, {:t, 2}]

    test "they agree after every step, and nothing stays on the BEAM for a shape gone" do
      :rand.seed(:exsss, {3, 5, 7})
      lsm = LsmEqualityIndex.new(lanes: 2, overlay_limit: 4)

      Enum.reduce(1..3_000, {EqualityIndex.new(), lsm}, fn step, {map, lsm} ->
        shape = Enum.random(@shapes)
        residual = residual_of(shape)
        keys = Enum.take_random(@keys, :rand.uniform(4))

        {map, lsm} =
          case :rand.uniform(10) do
            n when n <= 5 ->
              {Index.add_shape_many(map, keys, shape, residual),
               Index.add_shape_many(lsm, keys, shape, residual)}

            n when n <= 8 ->
              {Index.remove_shape_many(map, keys, shape, residual),
               Index.remove_shape_many(lsm, keys, shape, residual)}

            _ ->
              {Index.remove_shape_many(map, @keys, shape, residual),
               LsmEqualityIndex.drop_shape(lsm, shape, residual)}
          end

        same!(map, lsm, step)
        {map, lsm}
      end)
    end
  end

  # one residual per shape id, as the filter gives it: none for even integers
  defp residual_of(shape) when is_integer(shape) and rem(shape, 2) == 0, do: nil
  defp residual_of(shape), do: {:residual, shape}

  defp same!(map, lsm, step) do
    for key <- @keys do
      assert candidates(lsm, key) == candidates(map, key), "step #{step}, key #{key}"
    end

    present = Index.all_shape_ids(map)
    assert Index.all_shape_ids(lsm) == present, "step #{step}"
    assert Index.empty?(lsm) == Index.empty?(map)
    # on the BEAM: the residuals and interned ids of present shapes, no more
    with_residual = for s <- present, residual_of(s) != nil, into: MapSet.new(), do: s
    assert MapSet.new(Map.keys(lsm.residuals)) == with_residual, "step #{step}"
    interned = for s <- present, not is_integer(s), into: MapSet.new(), do: s
    assert MapSet.new(Map.keys(lsm.interned)) == interned, "step #{step}"
    assert map_size(lsm.names) == map_size(lsm.interned)
    handles = Map.values(lsm.interned) ++ lsm.free
    assert length(handles) == length(Enum.uniq(handles)), "step #{step}: a handle twice"
  end

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

    test "lsm: an integer shape id too (Rust says it is present), until its last key goes" do
      idx = LsmEqualityIndex.new() |> Index.add_shape_many(["k1", "k2"], 7, nil)
      assert LsmEqualityIndex.present?(idx, 7)

      assert_raise ArgumentError, ~r/another residual/, fn ->
        Index.add_shape(LsmEqualityIndex.new() |> Index.add_shape("k1", 7, :r), "k2", 7, nil)
      end

      assert_raise ArgumentError, ~r/another residual/, fn ->
        Index.add_shape(idx, "k3", 7, :r)
      end
    end

    test "lsm: a shape whose last key is removed is gone: it may come back with a residual" do
      idx =
        LsmEqualityIndex.new()
        |> Index.add_shape_many(["k1", "k2"], 7, nil)
        |> Index.remove_shape_many(["k1", "k2"], 7, nil)

      refute LsmEqualityIndex.present?(idx, 7)
      assert Index.empty?(idx)
      idx = Index.add_shape(idx, "k3", 7, :r)
      assert Index.candidates(idx, "k3") == [{7, :r}]
      assert Index.candidates(idx, "k1") == []
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
