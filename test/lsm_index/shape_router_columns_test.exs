defmodule LsmIndex.ShapeRouterColumnsTest do
  # A column added to a router's table (`ShapeRouter.add_column/3`: PostgreSQL's `ALTER
  # TABLE … ADD COLUMN`, announced by a Relation message; issue 26), in memory and
  # persistent.
  use ExUnit.Case, async: true

  alias LsmIndex.ShapeRouter
  alias LsmIndex.Test.Wait

  @cols [{"id", :int8}, {"user_id", :int8}, {"status", :text}]

  defp ins(router, rec), do: ShapeRouter.route(router, {:insert, rec})

  describe "add_column/3" do
    test "shapes added after it read the column; records without it read NULL" do
      {:ok, r} = ShapeRouter.new("t", :todos, @cols)
      :ok = ShapeRouter.add_shape(r, 1, "user_id = 7")

      assert {:error, {:invalid_where, _, msg}} =
               ShapeRouter.add_shape(r, 2, "user_id = 7 AND priority > 2")

      assert msg =~ "priority"

      assert :ok = ShapeRouter.add_column(r, "priority", :int4)
      :ok = ShapeRouter.add_shape(r, 2, "user_id = 7 AND priority > 2")
      :ok = ShapeRouter.add_shape(r, 3, "priority IS NULL")

      assert ShapeRouter.columns(r) == @cols ++ [{"priority", :int4}]
      assert ins(r, %{"user_id" => "7", "priority" => "5"}) == [1, 2]
      assert ins(r, %{"user_id" => "7", "priority" => "1"}) == [1]
      # a record from before the ALTER: no priority, NULL
      assert ins(r, %{"user_id" => "7"}) == [1, 3]
      assert ins(r, %{"user_id" => "7", "priority" => nil}) == [1, 3]

      upd = {:update, %{"user_id" => "7"}, %{"user_id" => "7", "priority" => "9"}}
      assert ShapeRouter.route(r, upd) == [1, 2, 3]
      assert ShapeRouter.route_many(r, [upd, {:delete, %{"priority" => "3"}}]) == [[1, 2, 3], []]
    end

    test "the same column again is a no-op; another type is an error" do
      {:ok, r} = ShapeRouter.new("t", :todos, @cols)
      mood = {:enum, "mood", ["sad", "ok"]}
      assert :ok = ShapeRouter.add_column(r, "m", mood)
      assert :ok = ShapeRouter.add_column(r, "m", mood)
      assert :ok = ShapeRouter.add_column!(r, "m", mood)
      assert {:error, {:column_type_conflict, "m", had}} = ShapeRouter.add_column(r, "m", :text)
      assert had =~ "mood"

      assert {:error, {:column_type_conflict, "user_id", "int8"}} =
               ShapeRouter.add_column(r, "user_id", :text)

      error = assert_raise LsmIndex.Error, fn -> ShapeRouter.add_column!(r, "user_id", :int4) end

      assert error.reason == {:column_type_conflict, "user_id", "int8"}
      assert length(ShapeRouter.columns(r)) == 4

      :ok = ShapeRouter.add_column(r, "tags", {:array, :text})
      :ok = ShapeRouter.add_shape(r, 1, "m = 'ok'::mood AND 'x' = ANY(tags)")
      assert ins(r, %{"m" => "ok", "tags" => "{x,y}"}) == [1]
      assert ins(r, %{"m" => "ok"}) == []

      assert ShapeRouter.columns(r) ==
               @cols ++ [{"m", mood}, {"tags", {:array, :text}}]
    end

    test "caller mistakes raise ArgumentError" do
      {:ok, r} = ShapeRouter.new("t", :todos, @cols)
      :ok = ShapeRouter.add_column(r, "m", {:enum, "mood", ["sad", "ok"]})

      for {name, type} <- [
            {"", :text},
            {"a\0b", :text},
            {:name, :text},
            {<<255>>, :text},
            {"x", :nope},
            {"x", {:enum, []}},
            {"x", {:array, {:array, :int8}}}
          ] do
        assert_raise ArgumentError, fn -> ShapeRouter.add_column(r, name, type) end
      end

      # the NIF itself: a type it cannot read is badarg, a name it cannot take an error
      assert_raise ArgumentError, fn -> LsmIndex.Native.router_add_column(r.ref, "x", "nope") end

      assert_raise ArgumentError, fn ->
        LsmIndex.Native.router_add_column(r.ref, <<255>>, "text")
      end

      assert {:error, {:invalid_config, _}} = LsmIndex.Native.router_add_column(r.ref, "", "text")

      # an enum name another column has with other labels
      assert_raise ArgumentError, ~r/mood/, fn ->
        ShapeRouter.add_column(r, "m2", {:enum, "mood", ["ok"]})
      end

      # 1,600 columns at most
      wide = for i <- 1..1599, do: {"c#{i}", :int8}
      {:ok, w} = ShapeRouter.new("t", :wide, wide)
      :ok = ShapeRouter.add_column(w, "last", :int8)
      assert_raise ArgumentError, ~r/1600/, fn -> ShapeRouter.add_column(w, "more", :int8) end

      :ok = ShapeRouter.close(r)
      assert_raise ArgumentError, ~r/closed/, fn -> ShapeRouter.add_column(r, "x", :text) end
    end

    test "a router over several tables has the columns it was made with" do
      {:ok, r} = ShapeRouter.new("t", %{{"public", "todos"} => @cols}, [])

      assert_raise ArgumentError, ~r/several tables/, fn ->
        ShapeRouter.add_column(r, "x", :text)
      end

      assert_raise ArgumentError, ~r/several tables/, fn -> ShapeRouter.columns(r) end
    end

    test "changes packed before it read the column as NULL; after it, its values" do
      {:ok, r} = ShapeRouter.new("t", :todos, @cols)
      :ok = ShapeRouter.add_shape(r, 1, "user_id = 7")
      changes = [{:insert, %{"user_id" => "7", "flag" => "t"}}, {:insert, %{"user_id" => "8"}}]
      before = ShapeRouter.pack_changes(r, changes)
      assert <<3::32-little, _::binary>> = before

      :ok = ShapeRouter.add_column(r, "flag", :bool)
      :ok = ShapeRouter.add_shape(r, 2, "flag")
      :ok = ShapeRouter.add_shape(r, 3, "flag IS NULL AND user_id = 8")
      assert ShapeRouter.route_many_packed(r, before) == [[1], [3]]

      # packed now: four columns, the flag read
      packed = ShapeRouter.pack_changes(r, changes)
      assert <<4::32-little, _::binary>> = packed
      assert ShapeRouter.route_many_packed(r, packed) == [[1, 2], [3]]
      assert ShapeRouter.route_many(r, changes) == [[1, 2], [3]]

      # narrower than the table was made, or wider than it is: refused
      {:ok, narrow} = ShapeRouter.new("t", :x, Enum.take(@cols, 2))
      short = ShapeRouter.pack_changes(narrow, [:truncate])

      assert_raise ArgumentError, ~r/2 columns, but the router's table has 4 \(3 before/, fn ->
        ShapeRouter.route_many_packed(r, short)
      end

      {:ok, wide} = ShapeRouter.new("t", :x, @cols ++ [{"flag", :bool}, {"more", :text}])

      assert_raise ArgumentError, ~r/5 columns/, fn ->
        ShapeRouter.route_many_packed(r, ShapeRouter.pack_changes(wide, [:truncate]))
      end
    end
  end

  describe "add_column/3 of a persistent router" do
    @tag :tmp_dir
    test "is kept: reopened with the table's columns, not fewer; more are added",
         %{tmp_dir: dir} do
      path = Path.join(dir, "router")
      {:ok, r} = ShapeRouter.open(path, "t", :todos, @cols)
      :ok = ShapeRouter.add_shape(r, 1, "user_id = 7")
      :ok = ShapeRouter.add_column(r, "priority", :int4)
      :ok = ShapeRouter.add_shape(r, 2, "priority > 2")
      :ok = ShapeRouter.close(r)

      # with the columns it was made with: the catalog knows one more
      assert {:error, {:invalid_config, msg}} = ShapeRouter.open(path, "t", :todos, @cols)
      assert msg =~ "priority"

      cols = @cols ++ [{"priority", :int4}]
      {:ok, r} = ShapeRouter.open(path, "t", :todos, cols)
      assert ShapeRouter.columns(r) == cols
      assert ins(r, %{"user_id" => "7", "priority" => "3"}) == [1, 2]
      assert ins(r, %{"priority" => "3"}) == [2]
      assert ins(r, %{"user_id" => "7"}) == [1]
      # the same column again: a Relation message replayed after the reopen
      :ok = ShapeRouter.add_column(r, "priority", :int4)
      :ok = ShapeRouter.close(r)

      # a column added while it was closed: given at open, recorded
      more = cols ++ [{"done", :bool}]
      {:ok, r} = ShapeRouter.open(path, "t", :todos, more)
      :ok = ShapeRouter.add_shape(r, 3, "done")
      assert ins(r, %{"done" => "t", "priority" => "9"}) == [2, 3]
      :ok = ShapeRouter.close(r)
      assert {:error, {:invalid_config, _}} = ShapeRouter.open(path, "t", :todos, cols)

      {:ok, r} = ShapeRouter.open(path, "t", :todos, more)
      assert ShapeRouter.columns(r) == more
      assert ins(r, %{"done" => "t"}) == [3]
      :ok = ShapeRouter.close(r)
    end

    @tag :tmp_dir
    test "survives a reopen without close (the catalog, not the snapshot)", %{tmp_dir: dir} do
      path = Path.join(dir, "router")
      cols = @cols ++ [{"priority", :int4}]

      # a process that adds the column and a shape, then exits without closing
      Task.async(fn ->
        {:ok, r} = ShapeRouter.open(path, "t", :todos, @cols, sync: :always)
        :ok = ShapeRouter.add_column(r, "priority", :int4)
        :ok = ShapeRouter.add_shape(r, 1, "priority = 1")
      end)
      |> Task.await(Wait.hang_guard())

      # its router is freed (the directory unlocked) by the VM shortly after, not at once
      :erlang.garbage_collect()

      r =
        Wait.until("the lock of #{path} to be released", fn ->
          case ShapeRouter.open(path, "t", :todos, cols) do
            {:error, :locked} -> nil
            {:ok, r} -> r
          end
        end)

      assert ins(r, %{"priority" => "1"}) == [1]
      :ok = ShapeRouter.close(r)
    end
  end
end
