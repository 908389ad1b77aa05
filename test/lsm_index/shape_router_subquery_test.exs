defmodule LsmIndex.ShapeRouterSubqueryTest do
  # Subquery shapes of a router over several tables (issue 23; plan §2.2 truth table, §2.3
  # moves, §2.4 one change): small hand-checked cases, each asserting the exact ids and the
  # exact moves. How the calls behave (route/route_many agreement, stateful routing,
  # scheduling, refusals, errors): shape_router_subquery_calls_test.exs; PostgreSQL as the
  # oracle: postgres_subquery_oracle_test.exs.
  use ExUnit.Case, async: true

  alias LsmIndex.ShapeRouter

  @items {"public", "items"}
  @projects {"public", "projects"}
  @tables %{
    @items => [
      {"id", :int8},
      {"project_id", :int8},
      {"owner_id", :int8},
      {"parent_id", :int8},
      {"tags", {:array, :int4}}
    ],
    @projects => [{"id", :int8}, {"owner_id", :int8}, {"name", :text}, {"tags", {:array, :int4}}]
  }
  # the subquery most cases read: projects of owner 7
  @of7 "(SELECT id FROM projects WHERE owner_id = 7)"

  defp router do
    {:ok, r} = ShapeRouter.new("tenant", @tables, [])
    r
  end

  # adds a shape of items (or `table:`) with its subqueries' values
  defp add!(r, id, sql, values, opts \\ []) do
    opts = Keyword.merge([table: @items, subquery_values: values], opts)
    assert ShapeRouter.add_shape(r, id, sql, opts) == :ok
    r
  end

  # rows: column => text (integers written as such), nil for NULL
  defp row(fields), do: Map.new(fields, fn {k, v} -> {to_string(k), text(v)} end)
  defp text(nil), do: nil
  defp text(v) when is_integer(v), do: Integer.to_string(v)
  defp text(v) when is_binary(v), do: v

  defp p(id, owner, more \\ []), do: row([id: id, owner_id: owner] ++ more)
  defp i(fields), do: row(fields)

  defp go(r, change), do: ShapeRouter.route_with_moves(r, change)

  defp views(r), do: Map.take(ShapeRouter.view_metrics(r), [:views, :attachments, :diff_entries])

  describe "IN (SELECT …)" do
    test "a value's count crossing 0 moves it; the outer row is routed by the view" do
      r = router() |> add!(1, "project_id IN #{@of7}", [["3"]])
      assert go(r, {:insert, @projects, p(4, 7)}) == {[], [{1, :move_in, 0, ["4"]}]}
      assert go(r, {:insert, @projects, p(5, 8)}) == {[], []}
      assert go(r, {:insert, @items, i(id: 1, project_id: 4)}) == {[1], []}
      assert go(r, {:insert, @items, i(id: 2, project_id: 5)}) == {[], []}
      assert go(r, {:insert, @items, i(id: 3, project_id: nil)}) == {[], []}
      # the old row matched: routed; the new one does not
      assert go(r, {:update, @items, i(id: 1, project_id: 4), i(id: 1, project_id: 5)}) ==
               {[1], []}

      assert go(r, {:update, @projects, p(4, 7), p(4, 8)}) == {[], [{1, :move_out, 0, ["4"]}]}

      assert go(r, {:update, @projects, p(3, 7), p(6, 7)}) ==
               {[], [{1, :move_out, 0, ["3"]}, {1, :move_in, 0, ["6"]}]}

      # a NULL row moves nothing for IN (plan §2.3)
      assert go(r, {:insert, @projects, p(nil, 7)}) == {[], []}
      assert go(r, {:delete, @projects, p(6, 7)}) == {[], [{1, :move_out, 0, ["6"]}]}
    end

    test "several rows projecting one value: it moves with the first and the last" do
      r =
        router() |> add!(1, "owner_id IN (SELECT owner_id FROM projects WHERE name = 'x')", [[]])

      x = [name: "x"]
      assert go(r, {:insert, @projects, p(1, 7, x)}) == {[], [{1, :move_in, 0, ["7"]}]}
      assert go(r, {:insert, @projects, p(2, 7, x)}) == {[], []}
      assert go(r, {:delete, @projects, p(1, 7, x)}) == {[], []}
      assert go(r, {:insert, @items, i(id: 1, owner_id: 7)}) == {[1], []}
      assert go(r, {:delete, @projects, p(2, 7, x)}) == {[], [{1, :move_out, 0, ["7"]}]}
      assert go(r, {:insert, @items, i(id: 2, owner_id: 7)}) == {[], []}
    end

    test "an update that changes only a column outside the subquery moves the row in" do
      # found through its view (no equality conjunct): the new row is looked up in the view
      # with the unchanged project_id (a bug: it was not parsed for the new row, and the
      # update missed its shape — found in review, issue 26)
      r = router() |> add!(1, "project_id IN #{@of7} AND owner_id > 0", [["3"]])
      # another update first, so the new row's buffer holds some other values
      assert go(
               r,
               {:update, @items, i(id: 9, project_id: 8, owner_id: 2),
                i(id: 9, project_id: 8, owner_id: 5)}
             ) ==
               {[], []}

      old = i(id: 1, project_id: 3, owner_id: 0)
      assert go(r, {:update, @items, old, %{old | "owner_id" => "1"}}) == {[1], []}
      assert go(r, {:update, @items, %{old | "owner_id" => "1"}, old}) == {[1], []}
      assert go(r, {:update, @items, old, %{old | "id" => "2"}}) == {[], []}
    end
  end

  describe "NOT IN (SELECT …) (PostgreSQL's NULL rules)" do
    test "empty view: TRUE even for a NULL value; filling and emptying it moves nil too" do
      r = router() |> add!(2, "project_id NOT IN #{@of7}", [[]])
      assert go(r, {:insert, @items, i(id: 1, project_id: nil)}) == {[2], []}
      assert go(r, {:insert, @items, i(id: 2, project_id: 3)}) == {[2], []}
      assert go(r, {:insert, @projects, p(3, 7)}) == {[], [{2, :move_out, 0, [nil, "3"]}]}
      assert go(r, {:insert, @items, i(id: 3, project_id: nil)}) == {[], []}
      assert go(r, {:insert, @items, i(id: 4, project_id: 3)}) == {[], []}
      assert go(r, {:insert, @items, i(id: 5, project_id: 4)}) == {[2], []}
      assert go(r, {:insert, @projects, p(4, 7)}) == {[], [{2, :move_out, 0, ["4"]}]}
      assert go(r, {:delete, @projects, p(4, 7)}) == {[], [{2, :move_in, 0, ["4"]}]}
      assert go(r, {:delete, @projects, p(3, 7)}) == {[], [{2, :move_in, 0, [nil, "3"]}]}
    end

    test "a NULL in the view: NULL for every value not in it; it moves everything" do
      r = router() |> add!(2, "project_id NOT IN #{@of7}", [["3"]])
      assert go(r, {:insert, @projects, p(nil, 7)}) == {[], [{2, :move_out, 0, :all}]}
      assert go(r, {:insert, @items, i(id: 1, project_id: 4)}) == {[], []}
      # while a NULL is there, values coming and going move nothing
      assert go(r, {:insert, @projects, p(4, 7)}) == {[], []}
      assert go(r, {:delete, @projects, p(4, 7)}) == {[], []}
      assert go(r, {:delete, @projects, p(nil, 7)}) == {[], [{2, :move_in, 0, :all}]}
      assert go(r, {:insert, @items, i(id: 1, project_id: 4)}) == {[2], []}
      assert go(r, {:insert, @items, i(id: 2, project_id: nil)}) == {[], []}
      # a value turning into NULL
      assert go(r, {:update, @projects, p(3, 7), p(nil, 7)}) == {[], [{2, :move_out, 0, :all}]}
    end
  end

  describe "(a, b) IN (SELECT x, y …)" do
    test "rows as lists; a NULL component on either side is never a match" do
      sql = "(project_id, owner_id) IN (SELECT id, owner_id FROM projects WHERE name = 'x')"
      r = router() |> add!(3, sql, [[["1", "7"], ["2", nil]]])
      x = [name: "x"]
      assert go(r, {:insert, @items, i(id: 1, project_id: 1, owner_id: 7)}) == {[3], []}
      assert go(r, {:insert, @items, i(id: 2, project_id: 2, owner_id: nil)}) == {[], []}
      assert go(r, {:insert, @items, i(id: 3, project_id: 1, owner_id: nil)}) == {[], []}
      assert go(r, {:insert, @items, i(id: 4, project_id: 1, owner_id: 8)}) == {[], []}
      assert go(r, {:insert, @projects, p(2, 9, x)}) == {[], [{3, :move_in, 0, [["2", "9"]]}]}
      assert go(r, {:insert, @projects, p(5, nil, x)}) == {[], []}

      assert go(r, {:update, @projects, p(2, nil, x), p(2, 7, x)}) ==
               {[], [{3, :move_in, 0, [["2", "7"]]}]}

      assert go(r, {:delete, @projects, p(1, 7, x)}) == {[], [{3, :move_out, 0, [["1", "7"]]}]}
    end
  end

  describe "under AND / OR / NOT, with $n parameters" do
    test "moves follow the view whatever the rest of the clause; ids need the whole clause" do
      r =
        router()
        |> add!(
          1,
          "owner_id = $1 AND project_id IN (SELECT id FROM projects WHERE owner_id = $2)",
          [[]],
          params: ["1", "7"]
        )
        |> add!(2, "owner_id = 1 OR project_id IN #{@of7}", [[]])
        |> add!(3, "NOT (project_id IN #{@of7})", [[]])
        # two NOTs above it: positive again
        |> add!(4, "NOT (owner_id = 1 OR project_id NOT IN #{@of7})", [[]])

      assert go(r, {:insert, @projects, p(4, 7)}) ==
               {[],
                [
                  {1, :move_in, 0, ["4"]},
                  {2, :move_in, 0, ["4"]},
                  {3, :move_out, 0, [nil, "4"]},
                  {4, :move_in, 0, ["4"]}
                ]}

      assert go(r, {:insert, @items, i(id: 1, owner_id: 1, project_id: 4)}) == {[1, 2], []}
      assert go(r, {:insert, @items, i(id: 2, owner_id: 2, project_id: 4)}) == {[2, 4], []}
      assert go(r, {:insert, @items, i(id: 3, owner_id: 1, project_id: 5)}) == {[2, 3], []}
      assert go(r, {:insert, @items, i(id: 4, owner_id: nil, project_id: nil)}) == {[], []}
      # the parameter of the inner clause: owner 1's projects are not in the view
      assert go(r, {:insert, @projects, p(5, 1)}) == {[], []}
    end

    test "= ANY (SELECT …) is IN, <> ALL (SELECT …) is NOT IN: one view for all four" do
      r =
        router()
        |> add!(1, "project_id = ANY #{@of7}", [["3"]])
        |> add!(2, "project_id <> ALL #{@of7}", [["3"]])
        |> add!(3, "project_id IN (SELECT id FROM projects WHERE owner_id = $1)", [["3"]],
          params: ["7"]
        )
        |> add!(4, "project_id NOT IN (select  ID from PUBLIC.projects where OWNER_ID = 7)", [
          ["3"]
        ])

      assert views(r) == %{views: 1, attachments: 4, diff_entries: 0}
      assert go(r, {:insert, @items, i(id: 1, project_id: 3)}) == {[1, 3], []}
      assert go(r, {:insert, @items, i(id: 2, project_id: 4)}) == {[2, 4], []}

      assert go(r, {:delete, @projects, p(3, 7)}) ==
               {[],
                [
                  {1, :move_out, 0, ["3"]},
                  {2, :move_in, 0, [nil, "3"]},
                  {3, :move_out, 0, ["3"]},
                  {4, :move_in, 0, [nil, "3"]}
                ]}
    end
  end

  describe "arrays" do
    test "array values in a view compare whole arrays" do
      r =
        router() |> add!(1, "tags IN (SELECT tags FROM projects WHERE owner_id = 7)", [["{1,2}"]])

      assert go(r, {:insert, @items, i(id: 1, tags: "{1,2}")}) == {[1], []}
      assert go(r, {:insert, @items, i(id: 2, tags: "{2,1}")}) == {[], []}
      assert go(r, {:insert, @items, i(id: 3, tags: "{1}")}) == {[], []}

      assert go(r, {:insert, @projects, p(5, 7, tags: "{3}")}) ==
               {[], [{1, :move_in, 0, ["{3}"]}]}

      assert go(r, {:insert, @projects, p(6, 7, tags: "{}")}) == {[], [{1, :move_in, 0, ["{}"]}]}
      assert go(r, {:insert, @items, i(id: 4, tags: "{}")}) == {[1], []}
    end

    test "array predicates in the inner WHERE" do
      r =
        router()
        |> add!(1, "project_id IN (SELECT id FROM projects WHERE tags @> ARRAY[1])", [[]])

      assert go(r, {:insert, @projects, p(5, 7, tags: "{1,2}")}) ==
               {[], [{1, :move_in, 0, ["5"]}]}

      assert go(r, {:insert, @projects, p(6, 7, tags: "{2}")}) == {[], []}
      assert go(r, {:insert, @projects, p(7, 7, tags: nil)}) == {[], []}

      assert go(r, {:update, @projects, p(6, 7, tags: "{2}"), p(6, 7, tags: "{2,1}")}) ==
               {[], [{1, :move_in, 0, ["6"]}]}

      assert go(r, {:update, @projects, p(5, 7, tags: "{1,2}"), p(5, 7, tags: "{2}")}) ==
               {[], [{1, :move_out, 0, ["5"]}]}

      assert go(r, {:insert, @items, i(id: 1, project_id: 6)}) == {[1], []}
    end
  end

  describe "a self-referential subquery" do
    test "the old row is routed by the views before the change, the new one by those after" do
      r = router() |> add!(1, "parent_id IN (SELECT id FROM items WHERE owner_id = 7)", [[]])
      assert go(r, {:insert, @items, i(id: 1, owner_id: 7)}) == {[], [{1, :move_in, 0, ["1"]}]}
      assert go(r, {:insert, @items, i(id: 2, owner_id: 8, parent_id: 1)}) == {[1], []}
      # its own parent: in the view only once it is inserted
      assert go(r, {:insert, @items, i(id: 3, owner_id: 7, parent_id: 3)}) ==
               {[1], [{1, :move_in, 0, ["3"]}]}

      assert go(r, {:delete, @items, i(id: 3, owner_id: 7, parent_id: 3)}) ==
               {[1], [{1, :move_out, 0, ["3"]}]}

      # old row: 4 not in the view before; new row: in it after
      old = i(id: 4, owner_id: 8, parent_id: 4)
      new = i(id: 4, owner_id: 7, parent_id: 4)
      assert go(r, {:insert, @items, old}) == {[], []}
      assert go(r, {:update, @items, old, new}) == {[1], [{1, :move_in, 0, ["4"]}]}
      assert go(r, {:update, @items, new, old}) == {[1], [{1, :move_out, 0, ["4"]}]}
      assert go(r, {:truncate, @items}) == {[1], [{1, :move_out, 0, :all}]}
      assert go(r, {:insert, @items, i(id: 2, owner_id: 8, parent_id: 1)}) == {[], []}
    end
  end

  describe "view_metrics/1 and remove_shape/2: shared views" do
    test "shapes with one subquery share one view; the last one removed frees it" do
      r =
        router()
        |> add!(1, "project_id IN #{@of7}", [["3"]])
        |> add!(2, "owner_id = 2 AND project_id IN #{@of7}", [["3"]])

      assert views(r) == %{views: 1, attachments: 2, diff_entries: 0}

      add!(r, 3, "project_id IN #{@of7} OR owner_id NOT IN (SELECT owner_id FROM projects)", [
        ["3"],
        []
      ])

      assert views(r) == %{views: 2, attachments: 4, diff_entries: 0}
      # replacing shape 3 detaches its old views (the second one freed)
      add!(r, 3, "parent_id IN #{@of7}", [["3"]])
      assert views(r) == %{views: 1, attachments: 3, diff_entries: 0}
      assert ShapeRouter.remove_shape(r, 3) == :ok
      assert ShapeRouter.remove_shape(r, 1) == :ok
      assert views(r) == %{views: 1, attachments: 1, diff_entries: 0}
      assert go(r, {:insert, @projects, p(4, 7)}) == {[], [{2, :move_in, 0, ["4"]}]}
      assert ShapeRouter.remove_shape(r, 2) == :ok
      assert ShapeRouter.remove_shape(r, 2) == :ok
      assert views(r) == %{views: 0, attachments: 0, diff_entries: 0}
      assert go(r, {:insert, @projects, p(5, 7)}) == {[], []}
      # freed: a later shape has to bring its values again
      assert {:error, {:seed, 0, _}} =
               ShapeRouter.add_shape(r, 4, "project_id IN #{@of7}",
                 table: @items,
                 subquery_values: [:current]
               )
    end

    test "view_metrics/1 answers atom keys and the view index's stats map, as documented" do
      m = router() |> add!(1, "project_id IN #{@of7}", [["3"]]) |> ShapeRouter.view_metrics()
      # today: %{"views" => 1, ..., "view_index" => {:ok, %{...}}}
      assert %{views: 1, attachments: 1, diff_entries: 0, view_underflows: 0} = m
      assert %{keys: _} = m.view_index
    end
  end

  describe ":current and stale snapshots" do
    test ":current attaches to the view as it is; without such a view: {:seed, 0, msg}" do
      r = router()

      assert {:error, {:seed, 0, msg}} =
               ShapeRouter.add_shape(r, 1, "project_id IN #{@of7}",
                 table: @items,
                 subquery_values: [:current]
               )

      assert msg =~ "does not exist"
      assert go(r, {:insert, @items, i(id: 1, project_id: nil)}) == {[], []}
      add!(r, 1, "project_id IN #{@of7}", [["3", "3"]])
      add!(r, 2, "project_id NOT IN #{@of7}", [:current])
      assert views(r) == %{views: 1, attachments: 2, diff_entries: 0}
      assert go(r, {:insert, @items, i(id: 1, project_id: 3)}) == {[1], []}
      # both rows of 3 are in the view
      assert go(r, {:delete, @projects, p(3, 7)}) == {[], []}

      assert go(r, {:delete, @projects, p(3, 7)}) ==
               {[], [{1, :move_out, 0, ["3"]}, {2, :move_in, 0, [nil, "3"]}]}
    end

    test "a stale shape's own view is its snapshot plus the stream since" do
      v = "(SELECT owner_id FROM projects WHERE name = 'x')"
      x = [name: "x"]
      # the view is {1, 2}; shape 2's snapshot lacks 2 and holds 5; shape 3's is empty
      r =
        router()
        |> add!(1, "owner_id IN #{v}", [["1", "2"]])
        |> add!(2, "owner_id IN #{v}", [["1", "5"]])
        |> add!(3, "owner_id NOT IN #{v}", [[]])

      assert %{views: 1, attachments: 3, diff_entries: d} = views(r)
      assert d > 0
      assert go(r, {:insert, @items, i(id: 1, owner_id: 2)}) == {[1, 3], []}
      assert go(r, {:insert, @items, i(id: 2, owner_id: 5)}) == {[2, 3], []}
      assert go(r, {:insert, @items, i(id: 3, owner_id: 1)}) == {[1, 2, 3], []}
      assert go(r, {:insert, @items, i(id: 4, owner_id: nil)}) == {[3], []}
      # the view's 2 goes 1 -> 2; shape 2's 0 -> 1; shape 3's view stops being empty
      assert go(r, {:insert, @projects, p(1, 2, x)}) ==
               {[], [{2, :move_in, 0, ["2"]}, {3, :move_out, 0, [nil, "2"]}]}

      # shape 2 already holds 5 (1 -> 2)
      assert go(r, {:insert, @projects, p(2, 5, x)}) ==
               {[], [{1, :move_in, 0, ["5"]}, {3, :move_out, 0, ["5"]}]}

      # the view's 2 goes 2 -> 1: shape 1 keeps it, shape 2's and 3's own 1 -> 0 (shape 3
      # still holds 5: not empty)
      assert go(r, {:delete, @projects, p(1, 2, x)}) ==
               {[], [{2, :move_out, 0, ["2"]}, {3, :move_in, 0, ["2"]}]}

      # 1 leaves the view and shape 2's (1 -> 0); shape 3's snapshot lacked it: 0 -> -1,
      # absent both times
      assert go(r, {:delete, @projects, p(3, 1, x)}) ==
               {[], [{1, :move_out, 0, ["1"]}, {2, :move_out, 0, ["1"]}]}

      # a truncate makes every view empty and exact: the diffs are gone
      assert go(r, {:truncate, @projects}) ==
               {[], [{1, :move_out, 0, :all}, {2, :move_out, 0, :all}, {3, :move_in, 0, :all}]}

      assert views(r) == %{views: 1, attachments: 3, diff_entries: 0}
    end
  end

  describe "truncate" do
    test "of an inner table: :all for every shape whose view was not empty" do
      r =
        router()
        |> add!(1, "project_id IN #{@of7}", [["3"]])
        |> add!(2, "project_id NOT IN #{@of7}", [["3"]])
        |> add!(3, "project_id IN (SELECT id FROM projects WHERE owner_id = 8)", [[]])
        |> add!(4, "project_id NOT IN (SELECT id FROM projects WHERE owner_id = 8)", [[]])
        |> add!(5, "owner_id IN (SELECT owner_id FROM items)", [[]], table: @projects)

      assert go(r, {:truncate, @projects}) ==
               {[5], [{1, :move_out, 0, :all}, {2, :move_in, 0, :all}]}

      assert go(r, {:insert, @projects, p(3, 7)}) ==
               {[], [{1, :move_in, 0, ["3"]}, {2, :move_out, 0, [nil, "3"]}]}

      # of an outer table: all its shapes (shape 5's view of items was empty: no move)
      assert go(r, {:truncate, @items}) == {[1, 2, 3, 4], []}
    end
  end

  describe "moves" do
    test "sorted by shape id (any term), move-outs first; ids may be any term" do
      r =
        router()
        |> add!("b", "project_id IN #{@of7}", [["3"]])
        |> add!({:t, 1}, "project_id NOT IN #{@of7}", [["3"]])
        |> add!(10, "project_id IN #{@of7} AND parent_id NOT IN #{@of7}", [["3"], ["3"]])
        |> add!(2, "project_id IN #{@of7}", [["3"]])

      assert go(r, {:update, @projects, p(3, 7), p(4, 7)}) ==
               {[],
                [
                  {2, :move_out, 0, ["3"]},
                  {2, :move_in, 0, ["4"]},
                  {10, :move_out, 0, ["3"]},
                  {10, :move_out, 1, ["4"]},
                  {10, :move_in, 0, ["4"]},
                  {10, :move_in, 1, ["3"]},
                  {{:t, 1}, :move_out, 0, ["4"]},
                  {{:t, 1}, :move_in, 0, ["3"]},
                  {"b", :move_out, 0, ["3"]},
                  {"b", :move_in, 0, ["4"]}
                ]}

      {ids, []} = go(r, {:insert, @items, i(id: 1, project_id: 4, parent_id: 3)})
      assert Enum.sort(ids) == [2, 10, "b"]
      {ids, []} = go(r, {:insert, @items, i(id: 2, project_id: 3)})
      assert ids == [{:t, 1}]
    end

    test "route/2 sorts named ids as it sorts integer ones (and as moves are sorted)" do
      r =
        router() |> add!("b", "project_id IN #{@of7}", [["3"]]) |> add!("a", "project_id = 3", [])

      # today: ["b", "a"], the order the names were first seen in
      assert ShapeRouter.route(r, {:insert, @items, i(id: 1, project_id: 3)}) == ["a", "b"]
    end
  end
end
