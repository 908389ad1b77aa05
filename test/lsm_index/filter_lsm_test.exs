defmodule LsmIndex.FilterLsmTest do
  # The contracts of `LsmIndex.Filter` with `index: :lsm` that the scenario suite (run
  # against every mode in filter_test.exs) cannot see: nothing per shape on the BEAM, any
  # term as a shape id, bad changes refused with the map engine's words, shapes moving
  # between tables, and the router set's reports.
  use ExUnit.Case, async: true

  alias LsmIndex.Filter

  @todos {"public", "todos"}
  @users {"public", "users"}
  @cols %{"id" => :int8, "user_id" => :int8, "status" => :text}

  defp shape(where, table \\ @todos), do: %{table: table, columns: @cols, where: where}
  defp ins(f, rec, table \\ @todos), do: Filter.affected_shapes(f, {:insert, table, rec})

  describe "BEAM memory" do
    test "the filter's term does not grow with its shapes, for integer and other ids" do
      size_with = fn ids ->
        f =
          Filter.add_shapes(
            Filter.new(index: :lsm),
            for({id, i} <- Enum.with_index(ids), do: {id, shape("user_id = #{i}")})
          )

        assert MapSet.size(Filter.all_shape_ids(f)) == length(ids)
        :erts_debug.flat_size(f)
      end

      small = size_with.(Enum.to_list(1..10))
      assert size_with.(Enum.to_list(1..10_000)) == small
      assert size_with.(Enum.map(1..10_000, &"shape-#{&1}")) == small
      assert size_with.(Enum.map(1..10, &{:shape, &1})) == small
    end
  end

  describe "shape ids" do
    test "any term is an id, given back as itself" do
      ids = [0, 2_147_483_647, 2_147_483_648, -1, 10 ** 30, "a", "", :b, {:c, [1]}, 1.5, %{d: 1}]

      f =
        Enum.reduce(ids, Filter.new(index: :lsm), &Filter.add_shape(&2, &1, shape("user_id = 1")))

      assert ins(f, %{"user_id" => "1"}) == MapSet.new(ids)
      assert Filter.all_shape_ids(f) == MapSet.new(ids)
      assert Filter.affected_shapes(f, {:truncate, @todos}) == MapSet.new(ids)
      [first | rest] = ids
      f = Enum.reduce(rest, f, &Filter.remove_shape(&2, &1))
      assert ins(f, %{"user_id" => "1"}) == MapSet.new([first])
      # a removed name can be added again
      f = Filter.add_shape(f, {:c, [1]}, shape("user_id = 2"))
      assert ins(f, %{"user_id" => "2"}) == MapSet.new([{:c, [1]}])
    end

    test "an id moves between tables when re-added under another" do
      f = Filter.new(index: :lsm) |> Filter.add_shape("s", shape("user_id = 1"))
      f = Filter.add_shape(f, "s", shape("id = 1", @users))
      assert ins(f, %{"user_id" => "1"}) == MapSet.new()
      assert ins(f, %{"id" => "1"}, @users) == MapSet.new(["s"])
      assert Filter.affected_shapes(f, {:truncate, @todos}) == MapSet.new()
      assert Filter.affected_shapes(f, {:truncate, @users}) == MapSet.new(["s"])
      assert Filter.shape_counts(f, @todos) == %{indexed: 0, scanned: 0}
    end
  end

  describe "bad input" do
    # the map engine's words, for every bad change
    test "a malformed change raises as with :map" do
      map = Filter.new(index: :map) |> Filter.add_shape(1, shape("user_id = 1"))
      lsm = Filter.new(index: :lsm) |> Filter.add_shape(1, shape("user_id = 1"))

      for change <- [
            {:insert, @todos},
            {:upsert, @todos, %{}},
            :truncate,
            {:update, @todos, %{}},
            {:insert, @todos, [1]},
            {:update, @todos, %{}, :x},
            {:insert, @users, "not a map"},
            {:insert, @todos, %{"user_id" => 7}}
          ] do
        m = assert_raise ArgumentError, fn -> Filter.affected_shapes(map, change) end
        l = assert_raise ArgumentError, fn -> Filter.affected_shapes(lsm, change) end
        assert l.message == m.message, inspect(change)

        l = assert_raise ArgumentError, fn -> Filter.affected_shapes_many(lsm, [change]) end
        assert l.message == m.message, inspect(change)
      end

      assert_raise ArgumentError, ~r/changes must be a list/, fn ->
        Filter.affected_shapes_many(lsm, :nope)
      end
    end

    test "a refused shape changes nothing and supersedes nothing" do
      f = Filter.new(index: :lsm) |> Filter.add_shape(1, shape("user_id = 1"))

      e = assert_raise ArgumentError, fn -> Filter.add_shape(f, 2, shape("user_id = ")) end
      assert e.message =~ ~s(WHERE "user_id = ": at byte 10)

      e = assert_raise ArgumentError, fn -> Filter.add_shape(f, 2, shape({:eq, "nope", 1})) end
      assert e.message =~ ~s(WHERE node {:eq, "nope", 1})

      e =
        assert_raise ArgumentError, fn ->
          Filter.add_shape(f, 2, %{shape("user_id = 'x'") | columns: %{"user_id" => :text}})
        end

      assert e.message ==
               ~s(column "user_id" of {"public", "todos"} is int8 in other shapes, not text)

      assert_raise ArgumentError, ~r/not UTF-8/, fn -> Filter.add_shape(f, 2, shape(<<255>>)) end
      assert ins(f, %{"user_id" => "1"}) == MapSet.new([1])
      assert Filter.all_shape_ids(f) == MapSet.new([1])
      # the only reader replaced: the column takes the new type
      f = Filter.add_shape(f, 1, %{shape("user_id = 'x'") | columns: %{"user_id" => :text}})
      assert ins(f, %{"user_id" => "x"}) == MapSet.new([1])
    end
  end

  describe "reports" do
    test "shape counts, index kinds, metrics and index stats of a table" do
      f =
        Filter.new(index: :lsm, lsm_options: [lanes: 3])
        |> Filter.add_shape(1, shape("user_id = 1 AND status <> 'x'"))
        |> Filter.add_shape(2, shape("status NOT LIKE 'x%'"))

      assert Filter.shape_counts(f, @todos) == %{indexed: 1, scanned: 1}
      assert Filter.shape_counts(f, @users) == %{indexed: 0, scanned: 0}
      assert Filter.index_kind(f, @todos, "user_id") == :lsm
      assert Filter.index_kind(f, @todos, "status") == nil
      assert ins(f, %{"user_id" => "1", "status" => "ab"}) == MapSet.new([1, 2])
      assert %{changes_routed: 1, candidates: 1} = Filter.metrics(f, @todos)
      assert Filter.metrics(f, @users) == nil
      assert :ok = Filter.wait_idle(f)
      assert %{lanes: 3, keys: 1} = Filter.index_stats(f, @todos)
      assert Filter.metrics(Filter.new(), @todos) == nil
    end
  end
end
