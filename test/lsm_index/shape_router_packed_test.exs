defmodule LsmIndex.ShapeRouterPackedTest do
  # ShapeRouter.pack_changes/2 + route_many_packed/2: the same answers as route_many/2 and
  # route/2 for random changes over a table of every column type (the PostgreSQL oracle's
  # random clauses and rows: NULLs, unparseable text, records lacking columns, updates keeping
  # most of the old row, truncates, changes repeated), across NIF calls; malformed binaries
  # raise ArgumentError with their byte offset and never take the VM down.
  use ExUnit.Case, async: true

  alias LsmIndex.ShapeRouter
  alias LsmIndex.Test.WhereGenerator

  @table {"public", "every_type"}

  defp router(shapes) do
    {:ok, r} =
      ShapeRouter.new("t", @table, WhereGenerator.columns(), index: [lanes: 2, overlay_limit: 64])

    for {id, sql} <- shapes, do: ShapeRouter.add_shape(r, id, sql)
    r
  end

  # random clauses of every construct; those the router refuses are left out by add_shape
  defp random_shapes(n) do
    enabled = MapSet.new(WhereGenerator.constructs())
    for id <- 1..n, do: {id, elem(WhereGenerator.clause(enabled), 0)}
  end

  # rows of the oracle's generator, some damaged: a column missing, or text of no type
  defp rows(n) do
    for row <- WhereGenerator.rows(n) do
      case :rand.uniform(10) do
        1 -> Map.delete(row, row |> Map.keys() |> Enum.random())
        2 -> Map.put(row, row |> Map.keys() |> Enum.random(), "not a value")
        _ -> row
      end
    end
  end

  defp changes(rows, n) do
    for _ <- 1..n do
      case :rand.uniform(12) do
        1 ->
          :truncate

        k when k <= 5 ->
          {:insert, Enum.random(rows)}

        k when k <= 7 ->
          {:delete, Enum.random(rows)}

        _ ->
          old = Enum.random(rows)
          other = Enum.random(rows)
          # most updates keep most columns
          new =
            Map.new(old, fn {k, v} ->
              if :rand.uniform(4) == 1, do: {k, other[k]}, else: {k, v}
            end)

          {:update, old, new}
      end
    end
  end

  describe "route_many_packed/2" do
    test "answers as route_many/2 and route/2 for random changes" do
      for seed <- 1..3 do
        :rand.seed(:exsss, {seed, 17, 29})
        r = router(random_shapes(150))
        rows = rows(80)
        changes = changes(rows, 3_000)
        # changes repeated within one transaction
        changes = changes ++ Enum.take(changes, 200)
        packed = ShapeRouter.pack_changes(r, changes)
        listed = ShapeRouter.route_many(r, changes)
        assert ShapeRouter.route_many_packed(r, packed) == listed
        assert listed == Enum.map(changes, &ShapeRouter.route(r, &1))

        for batch <- Enum.chunk_every(changes, 1 + :rand.uniform(150)) do
          assert ShapeRouter.route_many_packed(r, ShapeRouter.pack_changes(r, batch)) ==
                   ShapeRouter.route_many(r, batch)
        end

        assert Enum.count(listed, &(&1 != [])) > 300, "seed #{seed}: too few hits"
      end
    end

    test "a transaction of misses with a hit now and then, over many NIF calls" do
      :rand.seed(:exsss, {4, 5, 6})
      # equality shapes only: most changes stop at the presence filter
      shapes = for id <- 1..2_000, do: {id, "i8 = #{id * 3} AND s <> 'x'"}
      r = router(shapes)

      changes =
        for i <- 1..40_000 do
          user = if rem(i, 97) == 0, do: 3 * (1 + rem(i, 2_000)), else: -i
          row = %{"i8" => Integer.to_string(user), "s" => "a"}
          if rem(i, 5) == 0, do: {:update, row, Map.put(row, "s", "y")}, else: {:insert, row}
        end

      packed = ShapeRouter.pack_changes(r, changes)
      got = ShapeRouter.route_many_packed(r, packed)
      assert got == ShapeRouter.route_many(r, changes)
      assert Enum.count(got, &(&1 != [])) > 350
      assert ShapeRouter.metrics(r).changes_routed == 2 * 40_000
    end

    test "an empty transaction and a truncate" do
      r = router([{1, "i8 = 1"}, {2, "TRUE"}])
      assert ShapeRouter.route_many_packed(r, ShapeRouter.pack_changes(r, [])) == []
      packed = ShapeRouter.pack_changes(r, [:truncate, {:insert, %{}}])
      assert ShapeRouter.route_many_packed(r, packed) == [[1, 2], [2]]
    end

    test "a malformed binary raises ArgumentError with its byte offset" do
      r = router([{1, "i8 = 1"}])
      width = length(WhereGenerator.columns())
      packed = ShapeRouter.pack_changes(r, [{:insert, %{"i8" => "1"}}, :truncate])

      message = fn bin ->
        assert_raise(ArgumentError, fn -> ShapeRouter.route_many_packed(r, bin) end).message
      end

      assert message.(binary_part(packed, 0, byte_size(packed) - 1)) =~
               "malformed packed changes (see ShapeRouter.pack_changes/2): " <>
                 "truncated change (no op byte) at byte #{byte_size(packed) - 1} (change 1)"

      assert message.(packed <> "T") =~ "bytes after the last change at byte #{byte_size(packed)}"
      assert message.(<<width::32-little, 1::32-little, ?X>>) =~ "unknown change op"
      assert message.(<<>>) =~ "truncated width at byte 0"

      assert message.(<<3::32-little, 0::32>>) =~
               "packed changes of 3 columns, but the router's table has #{width}"

      lens = :binary.copy(<<-1::32>>, width - 1)

      assert message.(<<width::32-little, 1::32-little, ?I, 9::32-little, lens::binary, "1">>) =~
               "cell length past the end at byte 9 (change 0)"

      assert_raise ArgumentError, ~r/expected a binary/, fn ->
        ShapeRouter.route_many_packed(r, [{:insert, %{}}])
      end
    end

    test "damaged and random binaries never take the VM down" do
      :rand.seed(:exsss, {7, 7, 7})
      r = router(random_shapes(40))
      packed = ShapeRouter.pack_changes(r, changes(rows(20), 30))

      for _ <- 1..3_000 do
        bin =
          case :rand.uniform(3) do
            1 ->
              at = :rand.uniform(byte_size(packed)) - 1
              <<head::binary-size(at), _, tail::binary>> = packed
              head <> <<:rand.uniform(256) - 1>> <> tail

            2 ->
              binary_part(packed, 0, :rand.uniform(byte_size(packed)) - 1)

            3 ->
              <<binary_part(packed, 0, 8)::binary,
                :crypto.strong_rand_bytes(:rand.uniform(64))::binary>>
          end

        try do
          assert is_list(ShapeRouter.route_many_packed(r, bin))
        rescue
          e in ArgumentError -> assert e.message =~ ~r/packed changes/
        end
      end
    end

    test "a router over several tables and a closed router refuse" do
      {:ok, multi} = ShapeRouter.new("t", %{{"public", "a"} => [{"id", :int8}]}, [])

      assert_raise ArgumentError, ~r/packed changes are one table's/, fn ->
        ShapeRouter.pack_changes(multi, [])
      end

      r = router([])
      packed = ShapeRouter.pack_changes(r, [:truncate])
      :ok = ShapeRouter.close(r)

      assert_raise ArgumentError, "the router was closed", fn ->
        ShapeRouter.route_many_packed(r, packed)
      end
    end
  end

  describe "pack_changes/2" do
    test "lays out each change's op and rows in the router's column order" do
      {:ok, r} = ShapeRouter.new("t", :todos, [{"id", :int8}, {"note", :text}])

      assert ShapeRouter.pack_changes(r, [{:insert, %{"id" => "7", "other" => "x"}}, :truncate]) ==
               <<2::32-little, 2::32-little, ?I, 1::32-little, -1::32, "7", ?T>>

      update = {:update, %{"id" => "1", "note" => nil}, %{"id" => "2", "note" => "é"}}

      assert ShapeRouter.pack_changes(r, [update, {:delete, %{"note" => ""}}]) ==
               <<2::32-little, 2::32-little, ?U, 1::32-little, -1::32, "1", 1::32-little,
                 2::32-little, "2", "é", ?D, -1::32, 0::32>>
    end

    test "a malformed change or value raises ArgumentError naming its index" do
      {:ok, r} = ShapeRouter.new("t", :todos, [{"id", :int8}])

      assert_raise ArgumentError, ~r/the change at index 1 is malformed: a change is/, fn ->
        ShapeRouter.pack_changes(r, [:truncate, {:insert, :not_a_map}])
      end

      assert_raise ArgumentError, ~r/index 0 .* got 7 for "id"/, fn ->
        ShapeRouter.pack_changes(r, [{:delete, %{"id" => 7}}])
      end

      assert_raise ArgumentError, ~r/a proper list/, fn ->
        ShapeRouter.pack_changes(r, [:truncate | :tail])
      end

      assert_raise ArgumentError, ~r/must be a list/, fn -> ShapeRouter.pack_changes(r, :x) end
    end
  end
end
