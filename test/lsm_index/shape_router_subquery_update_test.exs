defmodule LsmIndex.ShapeRouterSubqueryUpdateTest do
  # An update of a table no subquery reads routes to the shapes its old row or its new row
  # matches, whatever columns it changed: checked against the two rows routed alone, as
  # inserts (which move no view: no subquery reads the table), over random subquery shapes
  # and random updates of one or two columns. The PostgreSQL oracle
  # (postgres_subquery_oracle_test.exs) cannot see this path: each of its tables is read by
  # some subquery, and such a table's update is routed row by row. It was wrong until issue
  # 26: the new row's unchanged view columns were not parsed, so a shape found through its
  # view missed an update that changed only its other columns.
  use ExUnit.Case, async: true

  alias LsmIndex.ShapeRouter

  @items {"public", "items"}
  @projects {"public", "projects"}
  @tables %{
    @items => [{"id", :int8}, {"project_id", :int8}, {"owner_id", :int8}, {"parent_id", :int8}],
    @projects => [{"id", :int8}, {"owner_id", :int8}, {"budget", :int8}]
  }
  @of "(SELECT id FROM projects WHERE owner_id = $1)"
  # the conjuncts beside a subquery are ones no index serves (no equality, no range: a
  # range's columns are parsed for every row, which hid the bug)
  @templates [
    "project_id IN #{@of} AND NOT (owner_id = $2)",
    "project_id IN #{@of} AND NOT (parent_id = $2)",
    "(project_id, owner_id) IN (SELECT id, owner_id FROM projects WHERE budget > $2) AND parent_id IS NOT NULL",
    "project_id NOT IN #{@of} AND owner_id IS NULL",
    "parent_id = $2 OR project_id IN #{@of}",
    "owner_id = ANY (SELECT owner_id FROM projects WHERE budget < $2) AND NOT (parent_id = $1)"
  ]

  defp draw(n, rand) do
    {x, rand} = :rand.uniform_s(n + 1, rand)
    {if(x > n, do: nil, else: Integer.to_string(x)), rand}
  end

  defp item(id, rand) do
    {[p, o, q], rand} = Enum.map_reduce([8, 6, 5], rand, &draw/2)
    {%{"id" => "#{id}", "project_id" => p, "owner_id" => o, "parent_id" => q}, rand}
  end

  test "an update routes to what its old row or its new row matches, alone" do
    {:ok, r} = ShapeRouter.new("t", @tables, [])
    rand = :rand.seed_s(:exsss, {26, 1, 1})

    rand =
      Enum.reduce(1..300, rand, fn id, rand ->
        sql = Enum.at(@templates, rem(id, length(@templates)))
        {[a, b], rand} = Enum.map_reduce([6, 6], rand, &draw/2)
        params = [a || "1", b || "2"]

        :ok =
          ShapeRouter.add_shape(r, id, sql, table: @items, params: params, subquery_values: [[]])

        rand
      end)

    # projects: inserted through the router, so the views hold them
    {projects, rand} =
      Enum.map_reduce(1..8, rand, fn id, rand ->
        {[o, b], rand} = Enum.map_reduce([6, 9], rand, &draw/2)
        {{:insert, @projects, %{"id" => "#{id}", "owner_id" => o, "budget" => b}}, rand}
      end)

    ShapeRouter.route_many(r, projects, moves: true)

    {updates, _} =
      Enum.map_reduce(1..800, rand, fn id, rand ->
        {old, rand} = item(id, rand)
        {other, rand} = item(id, rand)
        {k, rand} = :rand.uniform_s(3, rand)
        cols = Enum.take(Enum.shuffle(["project_id", "owner_id", "parent_id"]), min(k, 2))
        {{:update, @items, old, Map.merge(old, Map.take(other, cols))}, rand}
      end)

    # in one call, and one by one (a change routed alone reads only what its route parses)
    routed = ShapeRouter.route_many(r, updates, moves: true)
    one_by_one = Enum.map(updates, &ShapeRouter.route_with_moves(r, &1))

    alone =
      for {:update, t, old, new} <- updates do
        [{a, []}, {b, []}] =
          ShapeRouter.route_many(r, [{:insert, t, old}, {:insert, t, new}], moves: true)

        {Enum.sort(Enum.uniq(a ++ b)), []}
      end

    assert routed == alone
    assert one_by_one == alone
    assert Enum.count(routed, &(elem(&1, 0) != [])) > 100
  end
end
