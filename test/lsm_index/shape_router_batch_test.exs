defmodule LsmIndex.ShapeRouterBatchTest do
  # ShapeRouter.add_shapes/2: the shapes of one call route as add_shape/4 one after the
  # other; the first refusal stops the batch there (earlier entries added, none after).
  use ExUnit.Case, async: true

  alias LsmIndex.ShapeRouter

  @cols [{"id", :int8}, {"user_id", :int8}, {"status", :text}, {"score", :float8}]
  @templates [
    "user_id = $1",
    "user_id = $1 AND status <> 'done'",
    "score > $2 AND score < $3",
    "status LIKE 'op%'",
    "status ILIKE '%ate%'"
  ]

  defp entries(n) do
    for i <- 0..(n - 1) do
      sql = Enum.at(@templates, rem(i, length(@templates)))

      params = [
        Integer.to_string(rem(i, 97)),
        Integer.to_string(rem(i, 10)),
        "#{rem(i, 10) + 3}.5"
      ]

      # ids repeat: a later entry replaces an earlier one
      {rem(i * 7, div(n * 3, 4)), sql, params}
    end
  end

  defp changes do
    for u <- 0..120, s <- ["open", "late", "done", nil], score <- ["1", "4.2", "12"] do
      {:insert, %{"user_id" => "#{u}", "status" => s, "score" => score}}
    end
  end

  defp router do
    {:ok, r} = ShapeRouter.new("t", :todos, @cols)
    r
  end

  test "a batch routes as its shapes added one by one" do
    # 3,000 entries: compiled on threads of the call's own; 40: on the caller's
    for n <- [3_000, 40] do
      shapes = entries(n)
      {batch, one_by_one} = {router(), router()}
      assert :ok = ShapeRouter.add_shapes(batch, shapes)

      for {id, sql, params} <- shapes,
          do: :ok = ShapeRouter.add_shape(one_by_one, id, sql, params: params)

      assert ShapeRouter.route_many(batch, changes()) ==
               ShapeRouter.route_many(one_by_one, changes())

      assert ShapeRouter.metrics(batch).shapes_indexed ==
               ShapeRouter.metrics(one_by_one).shapes_indexed
    end

    r = router()
    assert :ok = ShapeRouter.add_shapes(r, [{1, "user_id = 5"}, {2, "status = $1", ["open"]}])
    assert ShapeRouter.route(r, {:insert, %{"user_id" => "5", "status" => "open"}}) == [1, 2]
    assert :ok = ShapeRouter.add_shapes(r, [])
  end

  test "the first refusal stops the batch there" do
    shapes = entries(2_000)
    {id, _, _} = Enum.at(shapes, 1_500)
    bad = List.replace_at(shapes, 1_500, {id, "user_id = 'x'", []})
    bad = List.replace_at(bad, 1_600, {1, "nope = 1", []})
    {r, twin} = {router(), router()}
    assert {:error, {^id, {:invalid_where, _, msg}}} = ShapeRouter.add_shapes(r, bad)
    assert msg =~ "int8"
    :ok = ShapeRouter.add_shapes(twin, Enum.take(shapes, 1_500))
    assert ShapeRouter.route_many(r, changes()) == ShapeRouter.route_many(twin, changes())

    not_utf8 = [{1, "user_id = 1"}, {2, <<0xFF>>}, {3, "user_id = 3"}]
    r = router()
    assert {:error, {2, {:invalid_where, 0, _}}} = ShapeRouter.add_shapes(r, not_utf8)
    assert ShapeRouter.route(r, {:insert, %{"user_id" => "1"}}) == [1]
    assert ShapeRouter.route(r, {:insert, %{"user_id" => "3"}}) == []
  end

  test "bad entries raise ArgumentError" do
    r = router()
    assert_raise ArgumentError, ~r/a shape is/, fn -> ShapeRouter.add_shapes(r, [:x]) end
    assert_raise ArgumentError, ~r/shape id/, fn -> ShapeRouter.add_shapes(r, [{-1, "true"}]) end
    assert_raise ArgumentError, ~r/string/, fn -> ShapeRouter.add_shapes(r, [{1, :sql}]) end
    assert_raise ArgumentError, ~r/params/, fn -> ShapeRouter.add_shapes(r, [{1, "true", :p}]) end
    assert_raise ArgumentError, fn -> ShapeRouter.add_shapes(r, :not_a_list) end
  end

  @tag :tmp_dir
  test "a persistent router keeps a batch across close and reopen", %{tmp_dir: dir} do
    path = Path.join(dir, "router")
    shapes = entries(1_200)
    {:ok, r} = ShapeRouter.new("t", :todos, @cols, path: path)
    :ok = ShapeRouter.add_shapes(r, shapes)
    routed = ShapeRouter.route_many(r, changes())
    :ok = ShapeRouter.close(r)
    assert_raise ArgumentError, ~r/closed/, fn -> ShapeRouter.add_shapes(r, shapes) end
    {:ok, r} = ShapeRouter.new("t", :todos, @cols, path: path)
    assert ShapeRouter.route_many(r, changes()) == routed
    :ok = ShapeRouter.close(r)
  end
end
