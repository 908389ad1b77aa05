defmodule LsmIndex.RegressionsTest do
  # Defects found using the API as a new user would (issue 12), one describe per function.
  use ExUnit.Case, async: true

  alias LsmIndex.{Filter, ShapeRouter}
  alias LsmIndex.Test.Wait

  @cols [{"id", :int8}, {"user_id", :int8}, {"status", :text}]
  @todos {"public", "todos"}

  describe "ShapeRouter.add_shape/3" do
    # Defect 1: with `index: [overload: :error]` the dirty retry mapped `Overloaded` to a bare
    # `:wait`, which the spec does not allow and the caller cannot act on.
    test "overload: :error never returns :wait, only :ok or {:error, :overloaded}" do
      {:ok, r} =
        ShapeRouter.new("t", @todos, @cols,
          index: [
            overload: :error,
            lanes: 1,
            overlay_limit: 1,
            max_overlay_keys: 1,
            compaction_threads: 1
          ]
        )

      # the worker parks after the flush of shape 1's 64 keys (the test hold); shape 2's
      # keys freeze the overlay again, shape 3's fill the active one: the lane is full
      hold = Wait.hold(r)
      in_list = fn id -> "user_id IN (#{Enum.map_join(1..64, ", ", &(id * 100 + &1))})" end
      assert ShapeRouter.add_shape(r, 1, in_list.(1)) == :ok
      assert %{flushes: 1, keys_flushed: 64} = Wait.await_held()
      assert ShapeRouter.add_shape(r, 2, in_list.(2)) == :ok
      assert ShapeRouter.add_shape(r, 3, in_list.(3)) == :ok

      # refused on a normal scheduler, and on the dirty one (a clause over 16 KiB goes there
      # at once: the path whose refusal came back as a bare :wait)
      assert ShapeRouter.add_shape(r, 4, in_list.(4)) == {:error, :overloaded}
      long = "user_id = 7 AND status <> '#{String.duplicate("x", 20_000)}'"
      assert ShapeRouter.add_shape(r, 5, long) == {:error, :overloaded}

      assert ShapeRouter.route(r, {:insert, %{"user_id" => "401"}}) == []
      # a removal drops the shape's handle: it writes no key, so a full lane does not stop it
      assert ShapeRouter.route(r, {:insert, %{"user_id" => "101"}}) == [1]
      assert ShapeRouter.remove_shape(r, 1) == :ok
      assert ShapeRouter.route(r, {:insert, %{"user_id" => "101"}}) == []

      Wait.release(hold)
      :ok = ShapeRouter.wait_idle(r)
      assert ShapeRouter.add_shape(r, 4, in_list.(4)) == :ok
      assert ShapeRouter.add_shape(r, 5, long) == :ok
      assert ShapeRouter.route(r, {:insert, %{"user_id" => "401"}}) == [4]
      assert ShapeRouter.route(r, {:insert, %{"user_id" => "7", "status" => "open"}}) == [5]
    end

    test "overload: :error between removals: never :wait" do
      {:ok, r} =
        ShapeRouter.new("t", @todos, @cols,
          index: [overload: :error, lanes: 1, overlay_limit: 1, max_overlay_keys: 1]
        )

      for id <- 1..200 do
        assert ShapeRouter.add_shape(r, id, "user_id = #{id}") in [:ok, {:error, :overloaded}]
        assert ShapeRouter.remove_shape(r, id) == :ok
      end
    end
  end

  describe "ShapeRouter.route_many/2" do
    # Defect 3: a change in the filter's 3-tuple form blamed the list ("must be a proper
    # list") and quoted the NIF's internal explanation as if it were the list's tail.
    test "a malformed change names its position and the shape of a change" do
      {:ok, r} = ShapeRouter.new("t", @todos, @cols)
      :ok = ShapeRouter.add_shape(r, 1, "user_id = 7")
      good = {:insert, %{"user_id" => "7"}}

      e =
        assert_raise ArgumentError, fn ->
          ShapeRouter.route_many(r, [good, good, {:insert, @todos, %{"user_id" => "7"}}])
        end

      assert e.message =~ "change at index 2"
      assert e.message =~ "{:insert, record}"
      assert e.message =~ ~s|{:insert, {"public", "todos"}, %{"user_id" => "7"}}|
      refute e.message =~ "proper list"
      refute e.message =~ ~s|"a change is|
    end

    test "the index counts changes routed by earlier NIF calls" do
      {:ok, r} = ShapeRouter.new("t", @todos, @cols)
      good = {:insert, %{"user_id" => "7"}}
      changes = List.duplicate(good, 20_000) ++ [{:insert, "not a map"}]

      e = assert_raise ArgumentError, fn -> ShapeRouter.route_many(r, changes) end
      assert e.message =~ "change at index 20000"
      assert e.message =~ "a record is a map"
    end

    test "an improper list is still reported as one" do
      {:ok, r} = ShapeRouter.new("t", @todos, @cols)

      assert_raise ArgumentError, ~r/proper list/, fn ->
        ShapeRouter.route_many(r, [:truncate | :oops])
      end
    end
  end

  describe "Filter.affected_shapes/2" do
    # Defect 2: a superseded copy of an `:lsm` filter answered from the resource's current
    # keys and its own old shape table: shape 2, unknown to that copy, was routed to.
    test "a superseded :lsm filter raises instead of answering" do
      f1 = Filter.new(index: :lsm) |> Filter.add_shape(1, shape("user_id = 1"))
      f2 = Filter.add_shape(f1, 2, shape("user_id = 2"))
      change = {:insert, @todos, %{"user_id" => "2"}}

      assert Filter.affected_shapes(f2, change) == MapSet.new([2])

      e = assert_raise ArgumentError, fn -> Filter.affected_shapes(f1, change) end
      assert e.message =~ ":lsm filters are single-use values"

      # the latest copy keeps working
      f3 = Filter.remove_shape(f2, 2)
      assert Filter.affected_shapes(f3, change) == MapSet.new()
      assert_raise ArgumentError, ~r/single-use/, fn -> Filter.affected_shapes(f2, change) end
    end

    # Defect (issue 21): the rule held only for a copy that used a changed LSM index: an
    # :lsm filter with no indexed shape yet (empty, or `where: nil` shapes only), or one
    # reading another table's index, answered from a superseded copy.
    test "a superseded :lsm filter raises with no indexed shape yet, and across tables" do
      change = {:insert, @todos, %{"user_id" => "2"}}
      everything = %{table: @todos, columns: Map.new(@cols), where: nil}
      f0 = Filter.new(index: :lsm)
      f1 = Filter.add_shape(f0, 1, everything)
      assert_every_call_raises(f0)
      f2 = Filter.add_shape(f1, 2, everything)
      assert Filter.affected_shapes(f2, change) == MapSet.new([1, 2])
      assert_every_call_raises(f1)

      # a shape of another table supersedes the copy reading this table's index
      f3 = Filter.add_shape(f2, 3, shape("user_id = 2"))
      f4 = Filter.add_shape(f3, 4, %{shape("user_id = 2") | table: {"public", "other"}})
      assert Filter.affected_shapes(f4, change) == MapSet.new([1, 2, 3])
      assert_every_call_raises(f3)

      # a call that changes nothing supersedes nothing
      assert Filter.remove_shape(f4, 99) == f4

      assert_raise ArgumentError, ~r/expected a literal/, fn ->
        Filter.add_shape(f4, 5, shape("user_id = "))
      end

      assert_raise ArgumentError, ~r/is int8 in other shapes/, fn ->
        Filter.add_shape(f4, 5, %{shape("user_id = 'x'") | columns: %{"user_id" => :text}})
      end

      assert Filter.affected_shapes(f4, change) == MapSet.new([1, 2, 3])
      assert Filter.all_shape_ids(f4) == MapSet.new([1, 2, 3, 4])
      assert Filter.index_kind(f4, @todos, "user_id") == :lsm
    end

    test ":map filters stay persistent values" do
      f1 = Filter.new(index: :map) |> Filter.add_shape(1, shape("user_id = 1"))
      f2 = Filter.add_shape(f1, 2, shape("user_id = 2"))
      change = {:insert, @todos, %{"user_id" => "2"}}
      assert Filter.affected_shapes(f1, change) == MapSet.new()
      assert Filter.affected_shapes(f2, change) == MapSet.new([2])
    end
  end

  describe "Filter.add_shape/3 and Filter.remove_shape/2" do
    test "on a superseded :lsm filter raise" do
      f1 = Filter.new(index: :lsm) |> Filter.add_shape(1, shape("user_id = 1"))
      _f2 = Filter.add_shape(f1, 2, shape("user_id = 2"))

      assert_raise ArgumentError, ~r/single-use/, fn ->
        Filter.add_shape(f1, 3, shape("user_id = 3"))
      end

      assert_raise ArgumentError, ~r/single-use/, fn -> Filter.remove_shape(f1, 1) end
    end
  end

  describe "LsmEqualityIndex (LsmIndex.Filter.Index.Protocol)" do
    alias LsmIndex.Filter.Index.Protocol, as: Index
    alias LsmIndex.Filter.LsmEqualityIndex

    test "every call on a superseded copy raises; the latest works" do
      i1 = LsmEqualityIndex.new() |> Index.add_shape(1, :a, nil)
      i2 = Index.add_shape(i1, 2, :b, nil)

      for call <- [
            fn -> Index.candidates(i1, 2) end,
            fn -> Index.add_shape(i1, 3, :c, nil) end,
            fn -> Index.remove_shape(i1, 1, :a, nil) end,
            fn -> Index.all_shape_ids(i1) end,
            fn -> Index.empty?(i1) end,
            fn -> LsmEqualityIndex.drop_shape(i1, :a, nil) end,
            fn -> LsmEqualityIndex.candidates_many(i1, [2]) end
          ] do
        assert_raise ArgumentError, ~r/:lsm filters are single-use values/, call
      end

      assert Index.candidates(i2, 2) == [{:b, nil}]
    end
  end

  defp shape(sql), do: %{table: @todos, columns: Map.new(@cols), where: sql}

  defp assert_every_call_raises(filter) do
    change = {:insert, @todos, %{"user_id" => "2"}}

    for call <- [
          fn -> Filter.affected_shapes(filter, change) end,
          fn -> Filter.affected_shapes(filter, {:truncate, @todos}) end,
          fn -> Filter.all_shape_ids(filter) end,
          fn -> Filter.index_kind(filter, @todos, "user_id") end,
          fn -> Filter.add_shape(filter, 9, shape("user_id = 9")) end,
          fn -> Filter.remove_shape(filter, 1) end,
          fn -> Filter.remove_shape(filter, 99) end
        ] do
      assert_raise ArgumentError, ~r/:lsm filters are single-use values/, call
    end
  end
end
