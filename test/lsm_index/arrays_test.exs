defmodule LsmIndex.ArraysTest do
  # Array columns (`{:array, type}`) and the array language through the ShapeRouter and the
  # Filter with both equality indexes; every answer PostgreSQL 15's (psql). Array predicates
  # are checked by the residual, except `column = ANY(constant)`, an IN list indexed as one.
  use ExUnit.Case, async: true

  alias LsmIndex.{Filter, ShapeRouter, Where}
  alias LsmIndex.Filter.ColumnType
  alias LsmIndex.Test.ShapeCases

  @mood {:enum, "mood", ["sad", "ok", "happy"]}
  @cols [
    {"id", :int8},
    {"owner", :int8},
    {"tag", :text},
    {"tags", {:array, :text}},
    {"members", {:array, :int8}},
    {"moods", {:array, @mood}}
  ]
  @table {"public", "t"}

  # {clause, params, records it matches, records it does not}
  @cases [
    {"tags @> ARRAY['urgent']", [], [%{"tags" => "{urgent,x}"}, %{"tags" => "{NULL,urgent}"}],
     [%{"tags" => "{}"}, %{"tags" => "{NULL}"}, %{}, %{"tags" => ~S({"urgent "})}]},
    {"$1 = ANY(members)", ["7"], [%{"members" => "{1,7,NULL}"}],
     [%{"members" => "{1,NULL}"}, %{"members" => "{}"}, %{}]},
    {"owner <> ALL(members)", [],
     [%{"owner" => "1", "members" => "{2,3}"}, %{"members" => "{}", "owner" => "1"}],
     [%{"owner" => "2", "members" => "{2,3}"}, %{"owner" => "1", "members" => "{2,NULL}"}]},
    {"owner = ANY($1)", ["{1,2,NULL}"], [%{"owner" => "2"}], [%{"owner" => "3"}, %{}]},
    {"tag = ANY('{\"a b\",NULL,\"NULL\"}')", [], [%{"tag" => "a b"}, %{"tag" => "NULL"}],
     [%{"tag" => "a"}, %{}]},
    {"tags && '{x,y}' AND NOT tags <@ '{x}'", [], [%{"tags" => "{x,z}"}, %{"tags" => "{x,NULL}"}],
     [%{"tags" => "{x}"}, %{"tags" => "{z}"}]},
    {"members = '{1,NULL}'", [], [%{"members" => "{1,NULL}"}, %{"members" => " { 1 , null } "}],
     [%{"members" => "{1}"}, %{"members" => "{NULL,1}"}]},
    {"members < '{1,2}'::int8[]", [], [%{"members" => "{1,1,5}"}, %{"members" => "{}"}],
     [%{"members" => "{1,2}"}, %{"members" => "{1,NULL}"}]},
    {"cardinality(tags) = 0 OR array_length(members, 1) > 2", [],
     [%{"tags" => "{}"}, %{"members" => "{1,1,1}"}],
     [%{"tags" => "{NULL}"}, %{"members" => "{}"}, %{}]},
    {"moods @> '{ok}'::mood[] AND 'happy'::mood = ANY(moods)", [], [%{"moods" => "{happy,ok}"}],
     [%{"moods" => "{ok}"}, %{"moods" => "{sad}"}]},
    {"members::text = '{1,NULL}'", [], [%{"members" => "{1,null}"}], [%{"members" => "{1}"}]}
  ]

  @refused [
    {"members @> ARRAY[1]", "int8[] @> int4[]"},
    {"tags @> '{{a}}'", "one-dimensional"},
    {"owner = ANY(tags)", "comparable"},
    {"tags[1] = 'a'", "array subscripts"},
    {"cardinality('{1}') = 1", "known type"},
    {"ARRAY[] = members", "empty array"}
  ]

  defp router, do: ShapeCases.router(@table, @cols, @cases)
  defp filter(mode), do: ShapeCases.filter(mode, @table, @cols, @cases)
  defp check(affected), do: ShapeCases.check(@cases, affected)

  describe "ShapeRouter" do
    test "routes array shapes as PostgreSQL answers them" do
      r = router()
      check(&ShapeRouter.route(r, {:insert, &1}))
      # updates route through the old and the new row
      old = %{"tags" => "{urgent}"}
      assert 0 in ShapeRouter.route(r, {:update, old, %{"tags" => "{}"}})

      ShapeCases.assert_router_refuses(r, @refused)
    end

    test "owner = ANY(constant) is an IN list; @>, && and = ANY(col) are indexed by element" do
      {:ok, r} = ShapeRouter.new("t", @table, @cols)
      :ok = ShapeRouter.add_shape(r, 1, "owner = ANY($1)", params: ["{1,2}"])
      :ok = ShapeRouter.add_shape(r, 2, "owner = ANY('{3}') AND tags @> '{x}'")
      :ok = ShapeRouter.add_shape(r, 3, "7 = ANY(members)")
      :ok = ShapeRouter.add_shape(r, 4, "tags && '{y,z}'")
      :ok = ShapeRouter.add_shape(r, 5, "tags <@ '{x}'")
      m = ShapeRouter.metrics(r)
      assert {m.shapes_indexed, m.shapes_scanned, m.scanned_no_equality} == {4, 1, 1}
      assert ShapeRouter.route(r, {:insert, %{"owner" => "3", "tags" => "{x}"}}) == [2, 5]
      assert ShapeRouter.route(r, {:insert, %{"members" => "{1,7}", "tags" => "{z,q}"}}) == [3, 4]
      # one presence probe per element of the row's arrays, none for NULL elements
      probes = ShapeRouter.metrics(r).presence_probes
      # (an empty array is in every array: the scanned `<@` shape takes it)
      assert ShapeRouter.route(r, {:insert, %{"members" => "{NULL,8}", "tags" => "{}"}}) == [5]
      assert ShapeRouter.metrics(r).presence_probes - probes == 1
    end

    test "an array value that does not parse routes conservatively" do
      {:ok, r} = ShapeRouter.new("t", @table, @cols)
      :ok = ShapeRouter.add_shape(r, 1, "tags @> '{x}'")
      # multi-dimensional text (PostgreSQL's for a 2-D array) is not read: routed
      assert ShapeRouter.route(r, {:insert, %{"tags" => "{{x}}"}}) == [1]
      assert ShapeRouter.route(r, {:insert, %{"tags" => "{y}"}}) == []
    end

    test "a bad cell in another column: routed when the shape's elements find the row" do
      {:ok, r} = ShapeRouter.new("t", @table, @cols)
      :ok = ShapeRouter.add_shape(r, 1, "tags @> '{x}' AND owner > 1")
      assert ShapeRouter.route(r, {:insert, %{"tags" => "{y,x}", "owner" => "many"}}) == [1]
      assert ShapeRouter.route(r, {:insert, %{"tags" => "{y}", "owner" => "many"}}) == []
    end
  end

  for mode <- [:map, :lsm] do
    describe "Filter, index: #{inspect(mode)}" do
      @describetag mode: mode

      test "filters array shapes as PostgreSQL answers them", %{mode: mode} do
        f = filter(mode)
        check(&Filter.affected_shapes(f, {:insert, @table, &1}))

        ShapeCases.assert_filter_refuses(f, @table, @cols, @refused)
      end

      test "an array value that does not parse routes conservatively", %{mode: mode} do
        shape = %{table: @table, columns: @cols, where: "tags @> '{x}'"}
        f = Filter.add_shape(Filter.new(index: mode), 1, shape)

        assert Filter.affected_shapes(f, {:insert, @table, %{"tags" => "{{x}}"}}) ==
                 MapSet.new([1])

        assert Filter.affected_shapes(f, {:insert, @table, %{"tags" => "{y}"}}) == MapSet.new()
      end

      # the map engine scans the shape (it files one key per value) yet answers as the router,
      # which finds it by element
      test "a bad cell in another column: routed when the shape's elements find the row",
           %{mode: mode} do
        shape = %{table: @table, columns: @cols, where: "tags @> '{x}' AND owner > 1"}
        f = Filter.add_shape(Filter.new(index: mode), 1, shape)
        ins = &Filter.affected_shapes(f, {:insert, @table, &1})
        assert ins.(%{"tags" => "{y,x}", "owner" => "many"}) == MapSet.new([1])
        assert ins.(%{"tags" => "{y}", "owner" => "many"}) == MapSet.new()
        assert ins.(%{"tags" => "{{x}}", "owner" => "2"}) == MapSet.new([1])
      end
    end
  end

  describe "Where.parse/2" do
    test "owner = ANY(constant) comes back as an IN list, array conditions as SQL" do
      assert {:ok, {:in, "owner", [1, 2, nil]}} = Where.parse("owner = ANY('{1,2,NULL}')", @cols)
      assert {:ok, {:not, {:in, "owner", [1]}}} = Where.parse("owner <> ALL('{1}')", @cols)

      assert {:ok, {:eq, "tags", ~S({"a b",NULL})}} =
               Where.parse(~S(tags = '{"a b",NULL}'), @cols)

      assert {:ok, {:sql, sql}} = Where.parse("tags @> ARRAY['a']", @cols)
      assert sql =~ "@>"
      assert {:ok, {:sql, ^sql}} = Where.parse(sql, @cols)
      assert {:ok, {:sql, any}} = Where.parse("'ok' = ANY(moods)", @cols)
      assert {:ok, {:sql, ^any}} = Where.parse(any, @cols)
    end
  end

  describe "ColumnType.columns!/1" do
    test "takes arrays of every scalar type, not arrays of arrays" do
      pairs = for t <- ColumnType.types(), do: {"c_#{t}", {:array, t}}
      pairs = pairs ++ [{"m", {:array, @mood}}, {"l", {:array, {:enum, ["a"]}}}]
      assert ColumnType.columns!(pairs) == pairs
      assert {:ok, _} = Where.parse("c_int8 = '{1}'", pairs)

      for bad <- [{:array, {:array, :int8}}, {:array, :blob}, {:array, {:enum, []}}, :array] do
        assert_raise ArgumentError, ~r/column "a" has type/, fn ->
          ColumnType.columns!([{"a", bad}])
        end
      end

      assert_raise ArgumentError, ~r/enum type "mood" has one list of labels/, fn ->
        ColumnType.columns!([{"e", @mood}, {"f", {:array, {:enum, "mood", ["sad"]}}}])
      end
    end
  end
end
