defmodule LsmIndex.ShapeRouterSubqueryPersistTest do
  # A persistent router over several tables (`ShapeRouter.new(tenant, tables, path: dir)`):
  # `flush(router, position: p)` keeps shapes and views with the caller's stream position; a
  # reopen is exactly as of that flush (what came after it is redone by the caller).
  use ExUnit.Case, async: true

  alias LsmIndex.ShapeRouter

  @issues {"public", "issues"}
  @projects {"public", "projects"}
  @tables %{
    @issues => [{"id", :int8}, {"project_id", :int8}],
    @projects => [{"id", :int8}, {"owner_id", :int8}]
  }
  @sql "project_id IN (SELECT id FROM projects WHERE owner_id = $1)"

  setup do
    dir = Path.join(System.tmp_dir!(), "lsm_subq_persist_#{System.unique_integer([:positive])}")
    on_exit(fn -> File.rm_rf!(dir) end)
    %{dir: dir}
  end

  defp open(dir), do: ShapeRouter.new("t", @tables, path: dir)
  defp project(id, owner), do: %{"id" => "#{id}", "owner_id" => "#{owner}"}
  defp issue(id, project), do: %{"id" => "#{id}", "project_id" => "#{project}"}

  test "a reopen is as of the last flush: shapes, views, diffs and the position", %{dir: dir} do
    {:ok, r} = open(dir)
    assert ShapeRouter.position(r) == nil

    :ok =
      ShapeRouter.add_shape(r, "a", @sql, table: @issues, params: ["7"], subquery_values: [["3"]])

    # a stale snapshot of the same view: "a"'s view plus 5 (a diff)
    :ok =
      ShapeRouter.add_shape(r, {:b, 1}, @sql,
        table: @issues,
        params: ["7"],
        subquery_values: [["3", "5"]]
      )

    # moves sorted by id term (a tuple before a binary)
    assert ShapeRouter.route_with_moves(r, {:insert, @projects, project(4, 7)}) ==
             {[], [{{:b, 1}, :move_in, 0, ["4"]}, {"a", :move_in, 0, ["4"]}]}

    :ok = ShapeRouter.flush(r, position: "0/16B3748")
    # after the flush: lost by the reopen below
    {[], [_, _]} = ShapeRouter.route_with_moves(r, {:insert, @projects, project(6, 7)})
    :ok = ShapeRouter.add_shape(r, "c", "project_id = 1", table: @issues)
    :ok = ShapeRouter.close(r)

    {:ok, r} = open(dir)
    assert ShapeRouter.position(r) == "0/16B3748"
    assert ShapeRouter.route(r, {:insert, @issues, issue(1, 4)}) == [{:b, 1}, "a"]
    assert ShapeRouter.route(r, {:insert, @issues, issue(2, 5)}) == [{:b, 1}]
    assert ShapeRouter.route(r, {:insert, @issues, issue(3, 6)}) == []
    assert ShapeRouter.route(r, {:insert, @issues, issue(4, 1)}) == []
    assert %{views: 1, attachments: 2, diff_entries: d} = ShapeRouter.view_metrics(r)
    assert d > 0
    # the stream resumes: project 6 again, now kept
    assert ShapeRouter.route_with_moves(r, {:insert, @projects, project(6, 7)}) ==
             {[], [{{:b, 1}, :move_in, 0, ["6"]}, {"a", :move_in, 0, ["6"]}]}

    :ok = ShapeRouter.remove_shape(r, "a")
    :ok = ShapeRouter.remove_shape(r, {:b, 1})
    :ok = ShapeRouter.flush(r, position: "end")
    :ok = ShapeRouter.close(r)
    {:ok, r} = open(dir)
    assert ShapeRouter.position(r) == "end"
    assert %{views: 0, attachments: 0} = ShapeRouter.view_metrics(r)
  end

  test "locked while open; refused for other tables", %{dir: dir} do
    {:ok, r} = open(dir)
    assert open(dir) == {:error, :locked}
    :ok = ShapeRouter.close(r)

    assert {:error, {:table_mismatch, _}} =
             ShapeRouter.new("t", Map.delete(@tables, @projects), path: dir)
  end

  test "in memory: flush is :ok and there is no position" do
    {:ok, r} = ShapeRouter.new("t", @tables, [])
    assert ShapeRouter.flush(r, position: "x") == :ok
    assert ShapeRouter.position(r) == nil
  end
end
