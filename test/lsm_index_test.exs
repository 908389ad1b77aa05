defmodule LsmIndexTest do
  use ExUnit.Case, async: true
  doctest LsmIndex

  setup do
    {:ok, index} = LsmIndex.new(lanes: 4, overlay_limit: 8)
    %{index: index}
  end

  describe "new/1" do
    test "defaults and every option" do
      assert {:ok, _} = LsmIndex.new()

      assert {:ok, _} =
               LsmIndex.new(
                 lanes: 1,
                 overlay_limit: 1,
                 max_segments: 1,
                 layout: :boomphf,
                 prefilter: false
               )
    end

    test "every layout, with and without the prefilter, under both policies, compacts right" do
      for layout <- [:quotient, :ptr_hash, :boomphf],
          prefilter <- [true, false],
          policy <- [:triangular, :leveled] do
        opts = [layout: layout, prefilter: prefilter, policy: policy]
        index = LsmIndex.new!([lanes: 2, overlay_limit: 64, max_segments: 2] ++ opts)
        # 3,000 keys through 64-key overlays: flushes, and merges to keep 2 segments a lane
        :ok = LsmIndex.add_many(index, for(i <- 1..3_000, do: {i, rem(i, 11)}))
        for i <- 1..3_000, rem(i, 5) == 0, do: :ok = LsmIndex.remove(index, i, rem(i, 11))
        :ok = LsmIndex.drop_handle(index, 3)
        :ok = LsmIndex.wait_idle(index)

        want = fn i ->
          if i <= 3_000 and rem(i, 5) != 0 and rem(i, 11) != 3, do: [rem(i, 11)], else: []
        end

        stats = LsmIndex.stats(index)
        assert stats.flushes > 0 and stats.merges > 0, inspect({opts, stats})
        assert stats.max_lane_segments <= 2
        # a minimal perfect hash (format 1) is decoded into the heap; a quotient table is not
        assert stats.mph_heap_bytes > 0 == (layout != :quotient), inspect({opts, stats})
        assert LsmIndex.lookup_many(index, Enum.to_list(1..4_000)) == Enum.map(1..4_000, want)
        # misses in segments: answered by the prefilter when there is one (single lookups;
        # batches skip it)
        for i <- 3_001..4_000, do: [] = LsmIndex.lookup(index, i)
        stats = LsmIndex.stats(index)
        assert stats.prefilter_rejects > 0 == prefilter, inspect({opts, stats})

        :ok = LsmIndex.compact(index)
        assert %{segments: 2, pending_drops: 0, overlay_keys: 0} = LsmIndex.stats(index)
        assert LsmIndex.lookup_many(index, Enum.to_list(1..4_000)) == Enum.map(1..4_000, want)
        assert LsmIndex.size(index) == Enum.count(1..3_000, &(want.(&1) != []))
      end
    end

    test "bad options raise ArgumentError naming the option" do
      assert_raise ArgumentError, ~r/:lanes/, fn -> LsmIndex.new(lanes: 0) end
      assert_raise ArgumentError, ~r/:lanes/, fn -> LsmIndex.new(lanes: "4") end
      assert_raise ArgumentError, ~r/:layout/, fn -> LsmIndex.new(layout: :fast) end
      assert_raise ArgumentError, fn -> LsmIndex.new(mph: :ptr_hash) end
      assert_raise ArgumentError, ~r/:prefilter/, fn -> LsmIndex.new(prefilter: 1) end
      assert_raise ArgumentError, fn -> LsmIndex.new(unknown: 1) end
    end
  end

  describe "new!/1" do
    test "returns the index itself" do
      index = LsmIndex.new!(lanes: 2)
      assert :ok = LsmIndex.add(index, "k", 1)
      assert LsmIndex.lookup(index, "k") == [1]
      assert LsmIndex.size(LsmIndex.new!()) == 0
    end

    test "bad options raise ArgumentError, as for new/1" do
      assert_raise ArgumentError, ~r/:lanes/, fn -> LsmIndex.new!(lanes: 0) end
      assert_raise ArgumentError, fn -> LsmIndex.new!(unknown: 1) end
    end
  end

  describe "lookup/2" do
    test "sets are sorted, deduplicated and empty when absent", %{index: index} do
      assert LsmIndex.lookup(index, "k") == []
      for h <- [9, 3, 9, 4_294_967_295, 0], do: assert(:ok = LsmIndex.add(index, "k", h))
      assert LsmIndex.lookup(index, "k") == [0, 3, 9, 4_294_967_295]
      assert :ok = LsmIndex.remove(index, "k", 3)
      assert :ok = LsmIndex.remove(index, "k", 12345)
      assert :ok = LsmIndex.remove(index, "absent", 1)
      assert LsmIndex.lookup(index, "k") == [0, 9, 4_294_967_295]
    end

    test "keys compare with ===", %{index: index} do
      keys = [1, 1.0, "a", ~c"a", :a, {1, 2}, [1, 2], %{a: 1}, 2 ** 70, -(2 ** 63), nil, <<>>]

      for {k, h} <- Enum.with_index(keys), do: :ok = LsmIndex.add(index, k, h)
      for {k, h} <- Enum.with_index(keys), do: assert(LsmIndex.lookup(index, k) == [h])
      # the encoding is deterministic: an equal map built another way finds the same key
      assert LsmIndex.lookup(index, Map.new([{:a, 1}])) == [7]
    end
  end

  describe "lookup_many/2" do
    test "batches keep key order", %{index: index} do
      assert :ok = LsmIndex.add_many(index, [{"a", 2}, {"b", 1}, {"a", 1}])
      assert LsmIndex.lookup_many(index, ["b", "zz", "a", "b"]) == [[1], [], [1, 2], [1]]
      assert :ok = LsmIndex.remove_many(index, [{"a", 1}, {"b", 1}])
      assert LsmIndex.lookup_many(index, ["a", "b"]) == [[2], []]
      assert LsmIndex.lookup_many(index, []) == []
    end
  end

  describe "add_many/2" do
    test "large batches (dirty scheduler path)", %{index: index} do
      pairs = for i <- 1..5_000, do: {i, rem(i, 7)}
      assert :ok = LsmIndex.add_many(index, pairs)

      assert LsmIndex.lookup_many(index, Enum.to_list(1..5_000)) ==
               for(i <- 1..5_000, do: [rem(i, 7)])
    end
  end

  describe "drop_handle/2" do
    test "a dropped handle disappears everywhere and can be added again", %{index: index} do
      :ok = LsmIndex.add_many(index, for(i <- 1..100, do: {i, 5}) ++ [{1, 6}])
      assert :ok = LsmIndex.drop_handle(index, 5)
      assert LsmIndex.lookup(index, 1) == [6]
      assert LsmIndex.lookup(index, 2) == []
      assert LsmIndex.size(index) == 1
      :ok = LsmIndex.add(index, 2, 5)
      assert :ok = LsmIndex.compact(index)
      assert LsmIndex.lookup_many(index, [1, 2, 3]) == [[6], [5], []]
      stats = LsmIndex.stats(index)
      assert stats.keys == 2
      assert stats.pending_drops == 0
      assert stats.lanes == 4
      assert is_map(stats.segments_per_level)
    end
  end

  describe "handle_count/2, distinct_handles/1, handles/1" do
    test "count the keys of each handle, exactly, with count_handles: true" do
      index = LsmIndex.new!(lanes: 4, overlay_limit: 8, count_handles: true)
      assert {LsmIndex.distinct_handles(index), LsmIndex.handles(index)} == {0, []}
      :ok = LsmIndex.add_many(index, for(i <- 1..100, do: {i, 5}) ++ [{1, 6}, {1, 6}])
      # a present pair added again, an absent one removed: nothing changes
      :ok = LsmIndex.add(index, 1, 5)
      :ok = LsmIndex.remove(index, 1_000, 5)
      :ok = LsmIndex.remove(index, 2, 5)
      assert {LsmIndex.handle_count(index, 5), LsmIndex.handle_count(index, 6)} == {99, 1}
      assert LsmIndex.handle_count(index, 4_294_967_295) == 0
      assert {LsmIndex.distinct_handles(index), LsmIndex.handles(index)} == {2, [5, 6]}
      :ok = LsmIndex.drop_handle(index, 5)
      :ok = LsmIndex.add(index, 3, 5)
      assert :ok = LsmIndex.compact(index)
      assert {LsmIndex.handle_count(index, 5), LsmIndex.handles(index)} == {1, [5, 6]}
      stats = LsmIndex.stats(index)
      assert stats.counted_handles == 2 and stats.handle_count_bytes > 0
    end

    test "an index made without count_handles raises ArgumentError", %{index: index} do
      :ok = LsmIndex.add(index, 1, 5)

      for call <- [
            &LsmIndex.handle_count(&1, 5),
            &LsmIndex.distinct_handles/1,
            &LsmIndex.handles/1
          ] do
        assert_raise ArgumentError, ~r/without count_handles/, fn -> call.(index) end
      end

      assert %{counted_handles: 0, handle_count_bytes: 0} = LsmIndex.stats(index)
      assert_raise ArgumentError, ~r/:count_handles/, fn -> LsmIndex.new(count_handles: 1) end
      assert_raise ArgumentError, ~r/handle/, fn -> LsmIndex.handle_count(index, -1) end
    end
  end

  describe "scenario: many flushes and merges" do
    test "survives many flushes and merges", %{index: index} do
      for i <- 1..2_000, do: :ok = LsmIndex.add(index, i, rem(i, 13))
      for i <- 1..2_000, rem(i, 2) == 0, do: :ok = LsmIndex.remove(index, i, rem(i, 13))
      assert LsmIndex.size(index) == 1_000
      :ok = LsmIndex.wait_idle(index)
      assert LsmIndex.stats(index).flushes > 0

      for i <- 1..20,
          do: assert(LsmIndex.lookup(index, i) == if(rem(i, 2) == 0, do: [], else: [rem(i, 13)]))
    end
  end

  describe "scenario: bad input" do
    test "handles out of range or not integers raise ArgumentError", %{index: index} do
      for bad <- [-1, 4_294_967_296, 1.0, "1", nil] do
        assert_raise ArgumentError, ~r/handle must be an integer/, fn ->
          LsmIndex.add(index, "k", bad)
        end

        assert_raise ArgumentError, ~r/handle/, fn -> LsmIndex.remove(index, "k", bad) end
        assert_raise ArgumentError, ~r/handle/, fn -> LsmIndex.drop_handle(index, bad) end
        assert_raise ArgumentError, ~r/handle/, fn -> LsmIndex.add_many(index, [{"k", bad}]) end
      end
    end

    test "non-lists and non-pairs raise ArgumentError", %{index: index} do
      assert_raise ArgumentError, ~r/list of \{key, handle\}/, fn ->
        LsmIndex.add_many(index, %{})
      end

      assert_raise ArgumentError, ~r/pair/, fn -> LsmIndex.remove_many(index, [:x]) end
      assert_raise ArgumentError, ~r/list of keys/, fn -> LsmIndex.lookup_many(index, "k") end
    end

    test "something that is not an index raises ArgumentError, in every function" do
      # plain refs, other NIF resources (atomics, ETS tables are references too), non-refs
      foreign = [make_ref(), :atomics.new(1, []), :ets.new(:t, []), :index, nil, self()]

      calls = [
        &LsmIndex.lookup(&1, "k"),
        &LsmIndex.lookup_many(&1, ["k"]),
        &LsmIndex.lookup_many(&1, List.duplicate("k", 2_000)),
        &LsmIndex.lookup_many_packed(&1, LsmIndex.pack_keys(["k"])),
        &LsmIndex.lookup_many_packed(&1, LsmIndex.pack_keys(List.duplicate("k", 2_000))),
        &LsmIndex.add(&1, "k", 1),
        &LsmIndex.remove(&1, "k", 1),
        &LsmIndex.add_many(&1, [{"k", 1}]),
        &LsmIndex.remove_many(&1, List.duplicate({"k", 1}, 2_000)),
        &LsmIndex.drop_handle(&1, 1),
        &LsmIndex.compact/1,
        &LsmIndex.size/1,
        &LsmIndex.stats/1,
        &LsmIndex.handle_count(&1, 1),
        &LsmIndex.distinct_handles/1,
        &LsmIndex.handles/1
      ]

      for bad <- foreign, call <- calls do
        assert_raise ArgumentError, ~r/expected an index/, fn -> call.(bad) end
      end
    end
  end

  describe "scenario: sharing and lifetime" do
    test "many processes read while one writes", %{index: index} do
      :ok = LsmIndex.add_many(index, for(i <- 1..500, do: {i, i}))

      writer =
        Task.async(fn ->
          for round <- 1..2_000, do: :ok = LsmIndex.add(index, rem(round, 500) + 1, 100_000)
        end)

      # each reader's random keys come from the test's seed (`mix test --seed N` replays them)
      seed = ExUnit.configuration()[:seed]

      readers =
        for reader <- 1..4 do
          Task.async(fn ->
            :rand.seed(:exsss, {seed, reader, 1})

            for _ <- 1..200, i <- Enum.take_random(1..500, 5) do
              got = LsmIndex.lookup(index, i)

              assert got == [i] or got == [i, 100_000],
                     "reader #{reader} (seed #{seed}): key #{i} gave #{inspect(got)}"
            end
          end)
        end

      Task.await_many([writer | readers], LsmIndex.Test.Wait.hang_guard())
    end
  end
end
