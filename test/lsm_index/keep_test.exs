defmodule LsmIndex.KeepTest do
  # ShapeRouter.route_many(router, changes, keep: true): per change `{ids, kept}`, `kept` the
  # ids whose WHERE holds on the row after the change — what routing the new row alone, as
  # an insert, answers (checked against that over random shapes and changes, scanned ones
  # and unparseable values included), from the one route. Filter.affected_shapes_many(f,
  # changes, keep: true) the same, `:lsm` against `:map` (which routes the new row again).
  use ExUnit.Case, async: true

  alias LsmIndex.{Filter, ShapeRouter}

  @cols [{"id", :int8}, {"user_id", :int8}, {"status", :text}, {"score", :float8}]
  @templates [
    "user_id = $1",
    "user_id = $1 AND status <> 'done'",
    "user_id IN ($1, $2) OR status = 'late'",
    "score > $2 AND score < $3",
    "status LIKE 'op%'",
    "status ILIKE '%ate%'",
    "lower(status) = 'open' AND score >= $2"
  ]

  defp router(shapes) do
    {:ok, r} = ShapeRouter.new("t", :todos, @cols)
    :ok = ShapeRouter.add_shapes(r, shapes)
    r
  end

  defp shapes(n) do
    for i <- 0..(n - 1) do
      sql = Enum.at(@templates, rem(i, length(@templates)))
      {i, sql, ["#{rem(i, 13)}", "#{rem(i, 10)}", "#{rem(i, 10) + 3}.5"]}
    end
  end

  defp row(rand) do
    {u, rand} = :rand.uniform_s(15, rand)
    {s, rand} = :rand.uniform_s(6, rand)
    {x, rand} = :rand.uniform_s(20, rand)
    status = Enum.at(["open", "Open", "late", "done", nil, "opening"], s - 1)
    # a score that does not parse now and then: routed conservatively, kept alike
    score = if x == 20, do: "not a number", else: "#{x / 2}"
    {%{"id" => "1", "user_id" => "#{u - 1}", "status" => status, "score" => score}, rand}
  end

  # the new row: the old one with each column kept or redrawn
  defp changed(old, rand) do
    {other, rand} = row(rand)

    Enum.reduce(Map.keys(old), {old, rand}, fn key, {new, rand} ->
      {x, rand} = :rand.uniform_s(2, rand)
      {if(x == 1, do: new, else: Map.put(new, key, other[key])), rand}
    end)
  end

  defp changes(n, seed) do
    {changes, _} =
      Enum.map_reduce(1..n, :rand.seed_s(:exsss, {seed, 2, 3}), fn _, rand ->
        {op, rand} = :rand.uniform_s(10, rand)
        {old, rand} = row(rand)

        cond do
          op <= 3 ->
            {{:insert, old}, rand}

          op <= 5 ->
            {{:delete, old}, rand}

          op == 10 ->
            {:truncate, rand}

          true ->
            {new, rand} = changed(old, rand)
            {{:update, old, new}, rand}
        end
      end)

    changes
  end

  # what each change's row after it matches, by routing it again as an insert
  defp expected(r, changes) do
    news = for {:update, _old, new} <- changes, do: {:insert, new}
    after_news = ShapeRouter.route_many(r, news)

    {kept, []} =
      Enum.map_reduce(Enum.zip(changes, ShapeRouter.route_many(r, changes)), after_news, fn
        {{:insert, _}, ids}, rest -> {{ids, ids}, rest}
        {{:update, _, _}, ids}, [matched | rest] -> {{ids, matched}, rest}
        {_delete_or_truncate, ids}, rest -> {{ids, []}, rest}
      end)

    kept
  end

  test "an update keeps the shapes its new row matches; an insert all, a delete none" do
    r = router([{1, "user_id = 1"}, {2, "user_id = 2"}, {3, "status = 'open'"}, {4, "score > 5"}])
    old = %{"user_id" => "1", "status" => "open", "score" => "9"}
    moved = %{old | "user_id" => "2", "score" => "1"}

    assert ShapeRouter.route_many(
             r,
             [{:update, old, moved}, {:insert, old}, {:delete, old}, :truncate],
             keep: true
           ) == [
             {[1, 2, 3, 4], [2, 3]},
             {[1, 3, 4], [1, 3, 4]},
             {[1, 3, 4], []},
             {[1, 2, 3, 4], []}
           ]

    # a column no shape reads changed: routed and kept by the old row's answers
    assert ShapeRouter.route_many(r, [{:update, old, %{old | "status" => "open"}}], keep: true) ==
             [{[1, 3, 4], [1, 3, 4]}]
  end

  test "kept is the new row routed as an insert, over random shapes and changes" do
    r = router(shapes(3_000))

    for seed <- 1..4 do
      changes = changes(600, seed)
      kept = ShapeRouter.route_many(r, changes, keep: true)
      assert kept == expected(r, changes)
      assert Enum.any?(kept, fn {ids, kept} -> kept != [] and kept != ids end)
    end
  end

  test "with more than 1,000 scanned shapes (a dirty scheduler's route) too" do
    scanned = for i <- 1..1_100, do: {10_000 + i, "status ILIKE '%#{rem(i, 7)}%' OR score > 9"}
    r = router(shapes(200) ++ scanned)
    assert ShapeRouter.metrics(r).shapes_scanned > 1_000
    changes = changes(300, 9)
    assert ShapeRouter.route_many(r, changes, keep: true) == expected(r, changes)
  end

  test "keeping reads no value the route does not: a value that is not text stays unread" do
    {:ok, r} = ShapeRouter.new("t", :t, [{"b", :text}, {"a", :int8}])
    :ok = ShapeRouter.add_shape(r, 1, "a = 1 AND b = 'x'")
    # the new row's key (a = 2) finds nothing: its b is never read, by either route
    change = {:update, %{"b" => "x", "a" => "1"}, %{"b" => 5, "a" => "2"}}
    assert ShapeRouter.route_many(r, [change]) == [[1]]
    assert ShapeRouter.route_many(r, [change], keep: true) == [{[1], []}]
  end

  test "bad options and a router over several tables raise ArgumentError" do
    r = router([{1, "user_id = 1"}])
    change = {:insert, %{"user_id" => "1"}}

    assert_raise ArgumentError, ~r/true, false or nil/, fn ->
      ShapeRouter.route_many(r, [], keep: 1)
    end

    # nil is false, as moves: nil always was
    assert ShapeRouter.route_many(r, [change], keep: nil, moves: nil) == [[1]]

    assert_raise ArgumentError, ~r/not taken together/, fn ->
      ShapeRouter.route_many(r, [change], keep: true, moves: true)
    end

    {:ok, tables} = ShapeRouter.new("t", %{{"public", "todos"} => @cols}, [])

    assert_raise ArgumentError, ~r/one table/, fn ->
      ShapeRouter.route_many(tables, [{:insert, {"public", "todos"}, %{}}], keep: true)
    end
  end

  describe "Filter.affected_shapes_many(f, changes, keep: true)" do
    defp filter(index, shapes) do
      table = {"public", "todos"}

      Filter.add_shapes(
        Filter.new(index: index),
        for(
          {id, sql, params} <- shapes,
          do: {id, %{table: table, columns: @cols, where: sql, params: params}}
        )
      )
    end

    defp filter_change({:insert, rec}), do: {:insert, {"public", "todos"}, rec}
    defp filter_change({:delete, rec}), do: {:delete, {"public", "todos"}, rec}
    defp filter_change({:update, old, new}), do: {:update, {"public", "todos"}, old, new}
    defp filter_change(:truncate), do: {:truncate, {"public", "todos"}}

    test ":lsm keeps what :map keeps, and what the router keeps" do
      shapes = shapes(1_500)
      r = router(shapes)
      {lsm, map} = {filter(:lsm, shapes), filter(:map, shapes)}
      changes = changes(500, 5)
      other = {:insert, {"public", "users"}, %{"id" => "1"}}
      filter_changes = Enum.map(changes, &filter_change/1) ++ [other]

      kept = Filter.affected_shapes_many(lsm, filter_changes, keep: true)
      assert kept == Filter.affected_shapes_many(map, filter_changes, keep: true)
      assert List.last(kept) == {MapSet.new(), MapSet.new()}

      assert Enum.map(kept, &elem(&1, 0)) == Filter.affected_shapes_many(lsm, filter_changes)

      from_router =
        for {ids, kept} <- ShapeRouter.route_many(r, changes, keep: true),
            do: {MapSet.new(ids), MapSet.new(kept)}

      assert Enum.drop(kept, -1) == from_router
      assert_raise ArgumentError, fn -> Filter.affected_shapes_many(lsm, [], keep: :yes) end
    end
  end
end
