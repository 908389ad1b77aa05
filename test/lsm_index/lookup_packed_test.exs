defmodule LsmIndex.LookupPackedTest do
  # `pack_keys/1` + `lookup_many_packed/2` (issue 25 step 3) against the list form
  # `lookup_many/2` and the single `lookup/2`: the same key must find the same set whichever
  # way it travels, through overlays, segments, removes, drops, compaction and reopen.
  use ExUnit.Case, async: true

  @min_i64 -9_223_372_036_854_775_808
  @max_i64 9_223_372_036_854_775_807

  # Keys of every kind the index takes, with the pairs that must stay apart: 1 / 1.0,
  # "a" / 'a', an integer / its 8 bytes as a binary, a binary / a term's external form,
  # the i64 bounds / one past them (term-encoded), empty and long (off-heap) binaries.
  @pool [
          0,
          1,
          -1,
          42,
          @min_i64,
          @max_i64,
          @min_i64 - 1,
          @max_i64 + 1,
          2 ** 70,
          1.0,
          -0.0,
          "",
          "a",
          ~c"a",
          <<0, 0, 0, 0, 0, 0, 0, 1>>,
          :erlang.term_to_binary(:x, [:deterministic]),
          :x,
          nil,
          {1, "a"},
          %{a: 1},
          [1, 2],
          <<1::3>>,
          String.duplicate("k", 100),
          String.duplicate("\xFF", 300)
        ] ++ Enum.to_list(100..160) ++ Enum.map(1..40, &"user_id=#{&1}")

  defp pick(n), do: for(_ <- 1..n//1, do: Enum.random(@pool))

  # every form answers the same, and that answer is the single lookups'
  defp assert_agree(index, keys) do
    want = Enum.map(keys, &LsmIndex.lookup(index, &1))
    assert LsmIndex.lookup_many(index, keys) == want
    assert LsmIndex.lookup_many_packed(index, LsmIndex.pack_keys(keys)) == want
  end

  defp batches(index) do
    for n <- [0, 1, 2, 7, 64, 257, 501, 1_200] do
      assert_agree(index, pick(n))
    end

    # every key of the pool at once, twice over (duplicates in one batch)
    assert_agree(index, @pool ++ Enum.reverse(@pool))
  end

  describe "pack_keys/1" do
    test "encodes each key as the single-key path does, byte for byte" do
      ext = :erlang.term_to_binary(:x, [:deterministic])

      assert LsmIndex.pack_keys([]) == <<0::32-little>>

      assert LsmIndex.pack_keys([1, "ab", :x]) ==
               <<3::32-little, 9::32-little, 1, 1::64-big, 3::32-little, 2, "ab",
                 byte_size(ext) + 1::32-little, 3, ext::binary>>

      # the i64 bounds are integers; one past them, any other number and a bitstring are terms
      assert LsmIndex.pack_keys([@min_i64, @max_i64]) ==
               <<2::32-little, 9::32-little, 1, @min_i64::64-big, 9::32-little, 1,
                 @max_i64::64-big>>

      for term <- [@min_i64 - 1, @max_i64 + 1, 1.0, <<1::3>>, ~c"a"] do
        ext = :erlang.term_to_binary(term, [:deterministic])

        assert LsmIndex.pack_keys([term]) ==
                 <<1::32-little, byte_size(ext) + 1::32-little, 3>> <> ext
      end
    end

    test "a key packed alone finds what it finds in any batch" do
      {:ok, index} = LsmIndex.new(lanes: 4)
      :ok = LsmIndex.add_many(index, Enum.with_index(@pool))

      for {key, h} <- Enum.with_index(@pool) do
        assert LsmIndex.lookup_many_packed(index, LsmIndex.pack_keys([key])) == [[h]]
      end
    end

    test "non-lists and improper lists raise ArgumentError" do
      assert_raise ArgumentError, ~r/list of keys/, fn -> LsmIndex.pack_keys("k") end
      assert_raise ArgumentError, ~r/list of keys/, fn -> LsmIndex.pack_keys(%{}) end
      assert_raise ArgumentError, ~r/proper list/, fn -> LsmIndex.pack_keys([1 | 2]) end
    end
  end

  describe "lookup_many_packed/2" do
    test "differential: packed ≡ list form ≡ single lookups, through every write path" do
      :rand.seed(:exsss, {25, 3, 1})
      # tiny overlays: the keys end up in several segments per lane, beside an overlay
      {:ok, index} = LsmIndex.new(lanes: 4, overlay_limit: 16, max_segments: 3)

      # nothing written yet: every key is absent
      batches(index)

      pairs = for key <- @pool, h <- Enum.take_random(0..9, :rand.uniform(3)), do: {key, h}
      :ok = LsmIndex.add_many(index, pairs)
      :ok = LsmIndex.wait_idle(index)
      # a few more pairs stay in the overlays: segments and overlays answer together
      :ok = LsmIndex.add_many(index, for(key <- Enum.take_random(@pool, 6), do: {key, 10}))
      assert %{segments: segments, overlay_keys: overlay} = LsmIndex.stats(index)
      assert segments > 0 and overlay > 0
      batches(index)

      :ok = LsmIndex.remove_many(index, Enum.take_random(pairs, div(length(pairs), 3)))
      batches(index)

      :ok = LsmIndex.drop_handle(index, 3)
      :ok = LsmIndex.wait_idle(index)
      batches(index)

      :ok = LsmIndex.add_many(index, for(key <- Enum.take_random(@pool, 20), do: {key, 3}))
      batches(index)

      :ok = LsmIndex.compact(index)
      assert %{pending_drops: 0} = LsmIndex.stats(index)
      batches(index)
    end

    @tag :tmp_dir
    test "a persistent index answers the same after reopen", %{tmp_dir: dir} do
      {:ok, index} = LsmIndex.open(dir, lanes: 2, overlay_limit: 32)
      :ok = LsmIndex.add_many(index, Enum.with_index(@pool))
      :ok = LsmIndex.close(index)

      {:ok, index} = LsmIndex.open(dir, lanes: 2, overlay_limit: 32)
      want = for {_key, h} <- Enum.with_index(@pool), do: [h]
      assert LsmIndex.lookup_many_packed(index, LsmIndex.pack_keys(@pool)) == want
      batches(index)
      :ok = LsmIndex.close(index)
    end

    test "one packed binary serves many calls and many indexes" do
      {:ok, a} = LsmIndex.new()
      {:ok, b} = LsmIndex.new()
      :ok = LsmIndex.add_many(a, [{1, 1}, {"x", 2}])
      :ok = LsmIndex.add_many(b, [{"x", 5}])
      packed = LsmIndex.pack_keys([1, "x", 1])

      for _ <- 1..3 do
        assert LsmIndex.lookup_many_packed(a, packed) == [[1], [2], [1]]
        assert LsmIndex.lookup_many_packed(b, packed) == [[], [5], []]
      end
    end
  end

  describe "lookup_many_packed/2: bad input" do
    setup do
      {:ok, index} = LsmIndex.new(lanes: 2)
      :ok = LsmIndex.add(index, "k", 1)
      %{index: index}
    end

    test "malformed binaries raise ArgumentError saying what is wrong and where",
         %{index: index} do
      good = LsmIndex.pack_keys(["k", 1])

      cases = [
        {<<>>, "truncated count at byte 0"},
        {<<1, 0, 0>>, "truncated count at byte 0"},
        # fewer keys than counted
        {<<3::32-little>> <> binary_part(good, 4, byte_size(good) - 4),
         "truncated key length at byte 23"},
        {binary_part(good, 0, byte_size(good) - 1), "key length past the end at byte 10"},
        {<<1::32-little, 0xFFFFFFFF::32-little, 2>>, "key length past the end at byte 4"},
        {good <> <<0>>, "bytes after the last key at byte 23"},
        {<<1::32-little, 0::32-little>>, "empty key (no tag byte) at byte 8"},
        {<<1::32-little, 2::32-little, 9, 0>>, "unknown key tag at byte 8"},
        {<<1::32-little, 5::32-little, 1, 0::32>>, "integer key not 8 bytes at byte 8"},
        {<<1::32-little, 2::32-little, 3, 0>>, "term key not in external term format at byte 8"},
        # a count above the normal-scheduler bound: refused on the dirty scheduler alike
        {<<1_000::32-little>> <> binary_part(good, 4, byte_size(good) - 4),
         "truncated key length at byte 23"}
      ]

      for {bad, message} <- cases do
        error = assert_raise ArgumentError, fn -> LsmIndex.lookup_many_packed(index, bad) end
        assert error.message =~ "malformed packed keys"
        assert error.message =~ message, inspect({bad, error.message})
      end

      # still usable afterwards
      assert LsmIndex.lookup_many_packed(index, good) == [[1], []]
    end

    test "non-binaries raise ArgumentError", %{index: index} do
      for bad <- [["k"], nil, ~c"k", <<1::3>>, {:packed, "k"}] do
        assert_raise ArgumentError, ~r/binary from LsmIndex.pack_keys/, fn ->
          LsmIndex.lookup_many_packed(index, bad)
        end
      end
    end

    test "something that is not an index raises as lookup_many/2 does" do
      foreign = [make_ref(), :atomics.new(1, []), :ets.new(:t, []), :index, nil, self()]
      small = LsmIndex.pack_keys(["k"])
      large = LsmIndex.pack_keys(List.duplicate("k", 2_000))

      for bad <- foreign, packed <- [small, large, <<>>] do
        assert_raise ArgumentError, ~r/expected an index/, fn ->
          LsmIndex.lookup_many_packed(bad, packed)
        end
      end
    end

    test "a closed index raises as lookup_many/2 does", %{index: index} do
      :ok = LsmIndex.close(index)

      for keys <- [[], ["k"], List.duplicate("k", 1_000)] do
        assert_raise ArgumentError, ~r/the index was closed/, fn ->
          LsmIndex.lookup_many(index, keys)
        end

        assert_raise ArgumentError, ~r/the index was closed/, fn ->
          LsmIndex.lookup_many_packed(index, LsmIndex.pack_keys(keys))
        end
      end
    end
  end
end
