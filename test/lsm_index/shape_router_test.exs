defmodule LsmIndex.ShapeRouterTest do
  use ExUnit.Case, async: true

  alias LsmIndex.{Filter, ShapeRouter}

  @cols [{"id", :int8}, {"user_id", :int8}, {"status", :text}, {"score", :float8}]

  setup do
    {:ok, router} = ShapeRouter.new("tenant", {"public", "todos"}, @cols)
    %{router: router}
  end

  defp ins(router, rec), do: ShapeRouter.route(router, {:insert, rec})

  describe "new/4" do
    @tag :tmp_dir
    test "a persistent router keeps its shapes across close and reopen", %{tmp_dir: dir} do
      path = Path.join(dir, "router")
      {:ok, r} = ShapeRouter.new("t", :todos, @cols, path: path, sync: :always)
      assert {:error, :locked} = ShapeRouter.new("t", :todos, @cols, path: path)
      :ok = ShapeRouter.add_shape(r, 1, "user_id = 7")
      :ok = ShapeRouter.add_shape(r, 2, "status ILIKE 'op%'")
      :ok = ShapeRouter.add_shape(r, 3, "user_id = 8")
      :ok = ShapeRouter.add_shape(r, 3, "user_id = 7 AND score > 1")
      :ok = ShapeRouter.remove_shape(r, 2)
      assert {:error, {:invalid_where, 0, msg}} = ShapeRouter.add_shape(r, 4, "nope")
      assert msg =~ ~s(unknown column "nope")
      :ok = ShapeRouter.flush(r)
      :ok = ShapeRouter.close(r)
      assert_raise ArgumentError, ~r/closed/, fn -> ShapeRouter.route(r, :truncate) end
      assert_raise ArgumentError, ~r/closed/, fn -> ShapeRouter.add_shape(r, 9, "user_id = 1") end
      assert_raise ArgumentError, ~r/closed/, fn -> ShapeRouter.route_many(r, [:truncate]) end
      assert :ok = ShapeRouter.close(r)

      {:ok, r} = ShapeRouter.new("t", :todos, @cols, path: path)
      rec = %{"user_id" => "7", "status" => "open", "score" => "2"}
      assert ShapeRouter.route(r, {:insert, rec}) == [1, 3]
      assert %{shapes_indexed: 2, shapes_scanned: 0} = ShapeRouter.metrics(r)
      :ok = ShapeRouter.close(r)

      assert {:error, {:invalid_config, msg}} =
               ShapeRouter.new("t", :todos, [{"user_id", :int8}], path: path)

      assert msg =~ "belongs to a table with columns"

      assert_raise ArgumentError, fn ->
        ShapeRouter.new("t", :todos, @cols, path: path, sync: :x)
      end
    end
  end

  describe "new!/4" do
    @tag :tmp_dir
    test "returns the router; a refused directory raises LsmIndex.Error", %{tmp_dir: dir} do
      path = Path.join(dir, "router")
      r = ShapeRouter.new!("t", :todos, @cols, path: path)
      assert %ShapeRouter{persistent: true, tenant: "t"} = r

      error =
        assert_raise LsmIndex.Error, ~r/locked/, fn ->
          ShapeRouter.new!("t", :todos, @cols, path: path)
        end

      assert error.reason == :locked
      :ok = ShapeRouter.close(r)

      error =
        assert_raise LsmIndex.Error, fn ->
          ShapeRouter.new!("t", :todos, [{"user_id", :int8}], path: path)
        end

      assert error.reason == :invalid_config and is_binary(error.message)
      assert_raise ArgumentError, fn -> ShapeRouter.new!("t", "x", []) end
    end
  end

  describe "open/5" do
    @tag :tmp_dir
    test "opens a persistent router: new/4 with :path", %{tmp_dir: dir} do
      path = Path.join(dir, "router")
      {:ok, r} = ShapeRouter.open(path, "t", :todos, @cols, sync: :always)
      assert r.persistent
      :ok = ShapeRouter.add_shape(r, 1, "user_id = 7")
      assert {:error, :locked} = ShapeRouter.open(path, "t", :todos, @cols)
      :ok = ShapeRouter.close(r)

      {:ok, r} = ShapeRouter.open(path, "t", :todos, @cols)
      assert ins(r, %{"user_id" => "7"}) == [1]
      :ok = ShapeRouter.close(r)

      assert_raise ArgumentError, ~r/directory path/, fn ->
        ShapeRouter.open(nil, "t", :todos, @cols)
      end

      assert_raise ArgumentError, ~r/first argument/, fn ->
        ShapeRouter.open(path, "t", :todos, @cols, path: Path.join(dir, "other"))
      end
    end
  end

  describe "open!/5" do
    @tag :tmp_dir
    test "returns the router; a locked directory raises LsmIndex.Error", %{tmp_dir: dir} do
      r = ShapeRouter.open!(dir, "t", :todos, @cols)
      :ok = ShapeRouter.add_shape(r, 1, "user_id = 7")
      error = assert_raise LsmIndex.Error, fn -> ShapeRouter.open!(dir, "t", :todos, @cols) end
      assert error.reason == :locked
      :ok = ShapeRouter.close(r)
      assert ins(ShapeRouter.open!(dir, "t", :todos, @cols), %{"user_id" => "7"}) == [1]
    end
  end

  describe "add_shape!/3" do
    test "returns :ok; a clause that does not parse raises LsmIndex.Error", %{router: r} do
      assert ShapeRouter.add_shape!(r, 1, "user_id = 7") == :ok
      assert ins(r, %{"user_id" => "7"}) == [1]

      error =
        assert_raise LsmIndex.Error, ~r/at byte 10: expected a literal/, fn ->
          ShapeRouter.add_shape!(r, 2, "user_id = ")
        end

      assert {:invalid_where, 10, _} = error.reason
      assert ShapeRouter.route(r, :truncate) == [1], "the refused shape left nothing"
      assert_raise ArgumentError, fn -> ShapeRouter.add_shape!(r, -1, "user_id = 1") end
    end
  end

  describe "route/2" do
    test "routes by index, residual and scan; replaces, removes, truncates", %{router: r} do
      assert :ok = ShapeRouter.add_shape(r, 1, "user_id = 7 AND status <> 'done'")
      assert :ok = ShapeRouter.add_shape(r, 2, ~s|"status" ILIKE 'OP%'|)
      assert :ok = ShapeRouter.add_shape(r, 3, "user_id IN (7, 8) OR user_id = 9")
      assert ins(r, %{"user_id" => "7", "status" => "open"}) == [1, 2, 3]
      assert ins(r, %{"user_id" => "7", "status" => "done"}) == [3]
      assert ins(r, %{"user_id" => "10"}) == []

      # an update matches on the old or the new row
      assert ShapeRouter.route(r, {:update, %{"user_id" => "7"}, %{"user_id" => "9"}}) == [3]
      assert ShapeRouter.route(r, {:delete, %{"user_id" => "8", "status" => "open"}}) == [2, 3]

      assert :ok = ShapeRouter.add_shape(r, 3, "user_id = 1")
      assert ins(r, %{"user_id" => "9"}) == []
      assert :ok = ShapeRouter.remove_shape(r, 2)
      assert :ok = ShapeRouter.remove_shape(r, 2)
      assert ShapeRouter.route(r, :truncate) == [1, 3]

      m = ShapeRouter.metrics(r)
      assert %{shapes_indexed: 2, shapes_scanned: 0, tenant: "tenant"} = m
      assert m.changes_routed == 7 and m.p99_route_ns >= m.p50_route_ns
    end

    test "unparseable values route to the shapes that could take the row", %{router: r} do
      :ok = ShapeRouter.add_shape(r, 1, "user_id = 7")
      :ok = ShapeRouter.add_shape(r, 2, "status = 'x'")
      :ok = ShapeRouter.add_shape(r, 3, "user_id = 8 AND score > 1")
      # an indexed column's: every shape found through it
      assert ins(r, %{"user_id" => "seven", "status" => "y"}) == [1, 3]
      assert ins(r, %{"user_id" => <<0xFF>>}) == [1, 3]
      # a residual's: a candidate reading it is routed; a miss never reads it
      assert ins(r, %{"user_id" => "8", "score" => "lots"}) == [3]
      assert ins(r, %{"user_id" => "9", "score" => "lots"}) == []
      assert ShapeRouter.metrics(r).unparseable_rows == 3
      # an update of the residual's column only: the old row's candidates, evaluated again
      old = %{"user_id" => "8", "score" => "0.5"}
      assert ShapeRouter.route(r, {:update, old, %{old | "score" => "2"}}) == [3]
      assert ShapeRouter.route(r, {:update, old, %{old | "score" => "0.50"}}) == []
      assert ShapeRouter.route(r, {:update, old, %{old | "score" => "x"}}) == [3]
    end

    test "a miss reads only the columns it probes: a value it never reads is not checked",
         %{router: r} do
      :ok = ShapeRouter.add_shape(r, 1, "user_id = 7 AND score > 1")
      # only the residual reads score: a miss never looks it up
      assert ins(r, %{"user_id" => "8", "score" => 1.5}) == []
      assert ShapeRouter.route_many(r, [{:delete, %{"user_id" => "8", "score" => :x}}]) == [[]]
      # a candidate reads it
      assert_raise ArgumentError, ~r/text/, fn -> ins(r, %{"user_id" => "7", "score" => 1.5}) end

      assert_raise ArgumentError, ~r/text/, fn ->
        ShapeRouter.route_many(r, [{:insert, %{"user_id" => "7", "score" => :x}}])
      end

      # an update reads what it compares: its candidates' columns (none on a miss)
      assert ShapeRouter.route(
               r,
               {:update, %{"user_id" => "8"}, %{"user_id" => "8", "score" => 1}}
             ) ==
               []

      assert_raise ArgumentError, ~r/text/, fn ->
        ShapeRouter.route(r, {:update, %{"user_id" => "7"}, %{"user_id" => "7", "score" => 1}})
      end
    end

    test "many scanned shapes: routes move to dirty schedulers with the same answers",
         %{router: r} do
      # arithmetic on the column: no index serves it (a plain `score > id` is a range)
      for id <- 1..1_100, do: :ok = ShapeRouter.add_shape(r, id, "score * 1 > #{id}")
      :ok = ShapeRouter.add_shape(r, 0, "user_id = 7")
      rec = %{"user_id" => "7", "score" => "3.5"}
      assert ShapeRouter.route(r, {:insert, rec}) == [0, 1, 2, 3]
      changes = for s <- 1..50, do: {:insert, %{"score" => "#{s}.5"}}
      routed = ShapeRouter.route_many(r, changes)
      assert routed == Enum.map(changes, &ShapeRouter.route(r, &1))
      assert Enum.at(routed, 4) == [1, 2, 3, 4, 5]
      assert %{shapes_scanned: 1_100} = ShapeRouter.metrics(r)
    end
  end

  describe "scenario: PostgreSQL's rules (ILIKE folding, literals)" do
    test "router and filter (both modes) fold ILIKE one character to one, as PostgreSQL",
         %{router: r} do
      shapes = [
        {1, "status ILIKE 'ΣΑΣ'"},
        {2, "status ILIKE 'İstanbul'"},
        {3, "status NOT ILIKE 'über%'"},
        {4, "user_id <>-1"},
        {5, "'7'::int8 = user_id"}
      ]

      for {id, sql} <- shapes, do: :ok = ShapeRouter.add_shape(r, id, sql)
      cols = Map.new(@cols)

      filters =
        for mode <- [:map, :lsm] do
          Enum.reduce(shapes, Filter.new(index: mode), fn {id, sql}, f ->
            Filter.add_shape(f, id, %{table: :t, columns: cols, where: sql})
          end)
        end

      # PostgreSQL 15 (UTF-8 database, C collation) answers these
      for {rec, want} <- [
            {%{"status" => "σας"}, [3]},
            {%{"status" => "σασ"}, [1, 3]},
            {%{"status" => "istanbul"}, [2, 3]},
            {%{"status" => "ÜBER ALLES"}, []},
            {%{"user_id" => "7"}, [4, 5]},
            {%{"user_id" => "-1"}, []}
          ] do
        assert Enum.sort(ins(r, rec)) == want, inspect(rec)

        for f <- filters do
          got = Filter.affected_shapes(f, {:insert, :t, rec}) |> Enum.sort()
          assert got == want, inspect({f.mode, rec})
        end
      end

      assert {:error, {:invalid_where, 8, "a known operator, found \"!=-\""}} =
               ShapeRouter.add_shape(r, 9, "user_id !=-1")

      assert {:error, {:invalid_where, 12, msg}} =
               ShapeRouter.add_shape(r, 9, "status LIKE 'ab\\'")

      assert msg =~ "LIKE pattern that does not end with the escape character"

      assert {:error, {:invalid_where, 8, msg}} = ShapeRouter.add_shape(r, 9, "score < 1e400")
      assert msg == ~s|expected a value of its type for column "score" (float8)|
    end
  end

  describe "scenario: lc_ctype: :c (a database whose LC_CTYPE is C)" do
    @tag :tmp_dir
    test "lower, upper and ILIKE fold ASCII letters only, in the router and the filter",
         %{tmp_dir: dir} do
      shapes = [
        {1, "status ILIKE 'über%'"},
        {2, "status ILIKE 'ABC%'"},
        {3, "lower(status) = 'über'"},
        {4, "upper(status) = 'ÜBER'"}
      ]

      routers =
        for opts <- [[lc_ctype: :c], [lc_ctype: :c, path: dir]] do
          r = ShapeRouter.new!("t", :t, @cols, opts)
          for {id, sql} <- shapes, do: :ok = ShapeRouter.add_shape(r, id, sql)
          r
        end

      filters =
        for mode <- [:map, :lsm] do
          Enum.reduce(shapes, Filter.new(index: mode, lc_ctype: :c), fn {id, sql}, f ->
            Filter.add_shape(f, id, %{table: :t, columns: Map.new(@cols), where: sql})
          end)
        end

      # PostgreSQL 15 with LC_CTYPE=C answers these: Ü is not a letter to it
      for {rec, want} <- [
            {%{"status" => "über alles"}, [1]},
            {%{"status" => "ÜBER"}, [4]},
            {%{"status" => "Über"}, [4]},
            {%{"status" => "über"}, [1, 3]},
            {%{"status" => "abcd"}, [2]}
          ] do
        for r <- routers, do: assert(Enum.sort(ins(r, rec)) == want, inspect(rec))

        for f <- filters do
          assert Enum.sort(Filter.affected_shapes(f, {:insert, :t, rec})) == want,
                 inspect({f.mode, rec})
        end
      end

      # a persistent router remembers its folding
      :ok = ShapeRouter.close(Enum.at(routers, 1))
      assert {:error, {:invalid_config, msg}} = ShapeRouter.open(dir, "t", :t, @cols)
      assert msg =~ "case_folding c"
      assert {:ok, _} = ShapeRouter.open(dir, "t", :t, @cols, lc_ctype: :c)

      assert_raise ArgumentError, ~r/lc_ctype/, fn ->
        ShapeRouter.new("t", :t, @cols, lc_ctype: :posix)
      end
    end
  end

  describe "scenario: parameters, lower() indexing and evaluation errors" do
    test "shapes with $n, indexed on lower(); an error on a row routes it", %{router: r} do
      :ok = ShapeRouter.add_shape(r, 1, "lower(status) = $1", params: ["open"])
      :ok = ShapeRouter.add_shape(r, 2, "user_id = $1 OR status = $2", params: ["7", nil])
      :ok = ShapeRouter.add_shape(r, 3, "100 / user_id > 10")
      :ok = ShapeRouter.add_shape(r, 4, "score > 1")
      :ok = ShapeRouter.add_shape(r, 5, "status LIKE '___'")

      # `score > 1` is found through the range index; `100 / user_id > 10` is scanned, and
      # so is a LIKE without a literal
      assert %{
               shapes_indexed: 3,
               shapes_by_range: 1,
               shapes_scanned: 2,
               scanned_no_equality: 1,
               scanned_pattern_without_literal: 1,
               scanned_or_branch_without_equality: 0
             } = ShapeRouter.metrics(r)

      assert ins(r, %{"status" => "OPEN"}) == [1]
      assert ins(r, %{"user_id" => "7"}) == [2, 3]
      # 100 / 0: PostgreSQL raises there; the shape could match, so it is routed
      assert ins(r, %{"user_id" => "0"}) == [3]
      assert %{evaluation_errors: 1} = ShapeRouter.metrics(r)

      assert_raise ArgumentError, ~r/parameter/, fn ->
        ShapeRouter.add_shape(r, 5, "user_id = $1", params: [7])
      end

      assert {:error, {:invalid_where, _, msg}} = ShapeRouter.add_shape(r, 5, "user_id = $2")
      assert msg =~ "$2"

      f =
        Filter.new()
        |> Filter.add_shape(1, %{
          table: :t,
          columns: @cols,
          where: "lower(status) = $1",
          params: ["open"]
        })

      assert Filter.affected_shapes(f, {:insert, :t, %{"status" => "Open"}}) == MapSet.new([1])
    end
  end

  describe "scenario: a :varchar column" do
    test "behaves as :text in the router and the filter (both modes)" do
      cols = [{"id", :int8}, {"v", :varchar}]
      {:ok, r} = ShapeRouter.new("t", :t, cols)
      shapes = [{1, "v = 'ab'"}, {2, "v ILIKE 'A%'"}, {3, "v < 'b'::varchar"}]
      for {id, sql} <- shapes, do: :ok = ShapeRouter.add_shape(r, id, sql)

      for mode <- [:map, :lsm] do
        f =
          Enum.reduce(shapes, Filter.new(index: mode), fn {id, sql}, f ->
            Filter.add_shape(f, id, %{table: :t, columns: Map.new(cols), where: sql})
          end)

        for {v, want} <- [{"ab", [1, 2, 3]}, {"b", []}, {"Ax", [2, 3]}] do
          assert Enum.sort(ins(r, %{"v" => v})) == want
          assert f |> Filter.affected_shapes({:insert, :t, %{"v" => v}}) |> Enum.sort() == want
        end
      end
    end
  end

  describe "route_many/2" do
    test "route_many routes a long transaction over several NIF calls", %{router: r} do
      for id <- 0..999, do: :ok = ShapeRouter.add_shape(r, id, "user_id = #{id} AND score > 0")

      changes =
        for i <- 1..50_000, do: {:insert, %{"user_id" => "#{rem(i, 2000)}", "score" => "1"}}

      routed = ShapeRouter.route_many(r, changes)
      assert length(routed) == 50_000
      assert routed == Enum.map(changes, &ShapeRouter.route(r, &1))
      assert ShapeRouter.route_many(r, []) == []
    end
  end

  describe "flush!/1" do
    @tag :tmp_dir
    test "returns :ok; a closed router raises ArgumentError", %{router: r, tmp_dir: dir} do
      assert ShapeRouter.flush!(r) == :ok
      persistent = ShapeRouter.open!(dir, "t", :todos, @cols)
      :ok = ShapeRouter.add_shape(persistent, 1, "user_id = 7")
      assert ShapeRouter.flush!(persistent) == :ok
      :ok = ShapeRouter.close(persistent)
      assert_raise ArgumentError, ~r/closed/, fn -> ShapeRouter.flush!(persistent) end
    end
  end

  describe "close!/1" do
    @tag :tmp_dir
    test "returns :ok, and :ok again on a closed router", %{router: r, tmp_dir: dir} do
      assert ShapeRouter.close!(r) == :ok
      persistent = ShapeRouter.open!(dir, "t", :todos, @cols)
      :ok = ShapeRouter.add_shape(persistent, 1, "user_id = 7")
      assert ShapeRouter.close!(persistent) == :ok
      assert ShapeRouter.close!(persistent) == :ok
      assert ins(ShapeRouter.open!(dir, "t", :todos, @cols), %{"user_id" => "7"}) == [1]
    end
  end

  describe "scenario: bad input" do
    test "bad input: clear errors, never a crash", %{router: r} do
      assert {:error, {:invalid_where, 10, msg}} = ShapeRouter.add_shape(r, 1, "user_id = ")
      assert msg =~ "expected a literal"
      assert {:error, {:invalid_where, _, msg}} = ShapeRouter.add_shape(r, 1, "nope = 1")
      assert msg =~ "nope"
      assert {:error, {:invalid_where, 9, msg}} = ShapeRouter.add_shape(r, 1, "status = 1")
      assert msg == ~s|expected a value of its type for column "status" (text)|

      assert ShapeRouter.add_shape(r, 1, <<0xFF>>) ==
               {:error, {:invalid_where, 0, "the clause is not UTF-8 text"}}

      deep = String.duplicate("(", 100_000) <> "user_id = 1" <> String.duplicate(")", 100_000)

      assert ShapeRouter.add_shape(r, 1, deep) ==
               {:error, {:invalid_where, 65, "at most 64 levels of parentheses and NOT"}}

      assert ShapeRouter.route(r, :truncate) == [], "refused shapes leave nothing"
      assert ins(r, %{"user_id" => 7}) == [], "no shape reads user_id yet"

      assert_raise ArgumentError, fn -> ShapeRouter.add_shape(r, -1, "user_id = 1") end
      assert_raise ArgumentError, fn -> ShapeRouter.add_shape(r, 2 ** 32, "user_id = 1") end
      assert_raise ArgumentError, fn -> ShapeRouter.add_shape(r, 1, :sql) end
      assert_raise ArgumentError, ~r/a change is/, fn -> ShapeRouter.route(r, {:upsert, %{}}) end
      assert_raise ArgumentError, ~r/a record is/, fn -> ShapeRouter.route(r, {:insert, 1}) end
      # values are checked in the columns shapes refer to (the only ones read)
      :ok = ShapeRouter.add_shape(r, 5, "user_id = 7")
      assert_raise ArgumentError, ~r/text/, fn -> ins(r, %{"user_id" => 7}) end
      assert ins(r, %{user_id: "7"}) == [], "keys are column names (strings)"
      assert_raise ArgumentError, fn -> ShapeRouter.route_many(r, [:truncate | :oops]) end
      assert_raise ArgumentError, fn -> ShapeRouter.route_many(r, [:truncate, :oops]) end

      assert_raise ArgumentError, fn -> ShapeRouter.new("t", "x", []) end

      assert_raise ArgumentError, fn ->
        ShapeRouter.new("t", "x", [{"a", :int8}, {"a", :text}])
      end

      assert_raise ArgumentError, fn -> ShapeRouter.new("t", "x", [{"a", :money}]) end
      assert_raise ArgumentError, fn -> ShapeRouter.new("t", "x", @cols, index: [lanes: 0]) end
    end
  end

  describe "scenario: Filter.add_shape/3 with SQL text" do
    test "Filter.add_shape takes SQL text" do
      cols = Map.new(@cols)

      f =
        Filter.new()
        |> Filter.add_shape(1, %{
          table: :t,
          columns: cols,
          where: "status LIKE 'o_en' OR user_id = 3"
        })

      assert Filter.affected_shapes(f, {:insert, :t, %{"status" => "open"}}) == MapSet.new([1])
      assert Filter.affected_shapes(f, {:insert, :t, %{"user_id" => "3"}}) == MapSet.new([1])

      assert_raise ArgumentError, ~r/at byte/, fn ->
        Filter.add_shape(f, 2, %{table: :t, columns: cols, where: "status ="})
      end
    end
  end
end
