defmodule LsmIndex.FilterTest do
  # The same scenarios against every kind of equality index; they must all agree.
  use ExUnit.Case, async: true

  alias LsmIndex.Filter

  @todos {"public", "todos"}
  @users {"public", "users"}
  @cols %{
    "id" => :int8,
    "user_id" => :int4,
    "title" => :text,
    "done" => :bool,
    "score" => :float8,
    "owner" => :uuid,
    "code" => :text,
    "small" => :int2
  }
  @uuid "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"

  # tiny lanes and overlays so that segments, merges and drops are exercised; :auto switches
  # to LSM after 2 values
  @opts [lsm_options: [lanes: 2, overlay_limit: 4], auto_threshold: 2]

  defp new(mode), do: Filter.new([index: mode] ++ @opts)
  defp shape(where, table \\ @todos), do: %{table: table, columns: @cols, where: where}

  defp add(filter, shapes) do
    Enum.reduce(shapes, filter, fn {id, where}, f -> Filter.add_shape(f, id, shape(where)) end)
  end

  defp ins(f, record, table \\ @todos),
    do: sorted(Filter.affected_shapes(f, {:insert, table, record}))

  defp sorted(set), do: set |> MapSet.to_list() |> Enum.sort()

  for mode <- [:map, :lsm, :auto] do
    describe "add_shape/3, index: #{inspect(mode)}" do
      @describetag mode: mode

      test "IN lists and ORs of equalities on one column", %{mode: mode} do
        f =
          new(mode)
          |> add(
            in: {:in, "user_id", [1, 2, 3, 2]},
            or: {:or, [{:eq, "user_id", 3}, {:in, "user_id", [4]}]},
            same: {:or, [{:eq, "user_id", 5}, {:eq, "user_id", 5}]},
            mixed: {:or, [{:eq, "user_id", 6}, {:eq, "title", "x"}]}
          )

        assert ins(f, %{"user_id" => "2"}) == [:in]
        assert ins(f, %{"user_id" => "3"}) == [:in, :or]
        assert ins(f, %{"user_id" => "5"}) == [:same]
        assert ins(f, %{"user_id" => "6"}) == [:mixed]
        assert ins(f, %{"title" => "x"}) == [:mixed]
        f = Filter.remove_shape(f, :same)
        assert ins(f, %{"user_id" => "5"}) == []
        assert ins(f, %{"user_id" => "3"}) == [:in, :or]
      end

      test "adding an existing shape id replaces it", %{mode: mode} do
        f = new(mode) |> add(a: {:eq, "user_id", 1})
        f = add(f, a: {:eq, "user_id", 2})
        assert ins(f, %{"user_id" => "1"}) == []
        assert ins(f, %{"user_id" => "2"}) == [:a]
      end

      test "bad shapes and changes raise ArgumentError", %{mode: mode} do
        f = new(mode)
        bad = fn where -> fn -> Filter.add_shape(f, :x, shape(where)) end end
        # the engine's refusals name the tree's node
        assert_raise ArgumentError,
                     ~r/WHERE node \{:eq, "nope", 1\}: .*unknown column "nope"/,
                     bad.({:eq, "nope", 1})

        assert_raise ArgumentError,
                     ~r/WHERE node \{:eq, "user_id", "one"\}: .*\(int4\)/,
                     bad.({:eq, "user_id", "one"})

        assert_raise ArgumentError,
                     ~r/node \{:eq, "owner", "nope"\}: .*uuid/,
                     bad.({:eq, "owner", "nope"})

        assert_raise ArgumentError,
                     ~r/node \{:in, "done", \[1\]\}: .*bool/,
                     bad.({:and, [{:eq, "user_id", 1}, {:in, "done", [1]}]})

        assert_raise ArgumentError,
                     ~r/node \{:like, "user_id", "1%"\}: LIKE needs a text/,
                     bad.({:like, "user_id", "1%"})

        assert_raise ArgumentError, ~r/node \{:eq, "user_id", 1.5\}/, bad.({:eq, "user_id", 1.5})
        # malformed trees are refused before the engine sees them
        assert_raise ArgumentError, ~r/not a WHERE expression/, bad.({:regex, "title", "%"})
        assert_raise ArgumentError, ~r/text pattern/, bad.({:ilike, "title", 1})
        assert_raise ArgumentError, ~r/list of expressions/, bad.({:and, :x})
        assert_raise ArgumentError, ~r/list of expressions/, bad.({:or, [{:const, true} | :x]})
        assert_raise ArgumentError, ~r/list of literals/, bad.({:in, "user_id", 1})
        assert_raise ArgumentError, ~r/not a SQL literal/, bad.({:eq, "user_id", %{}})
        assert_raise ArgumentError, ~r/not a column name/, bad.({:is_null, :user_id})
        assert_raise ArgumentError, ~r/not UTF-8/, bad.({:eq, "title", <<255>>})
        assert_raise ArgumentError, ~r/at byte 10: expected a value/, bad.("user_id = 'x'")
        assert_raise ArgumentError, ~r/not UTF-8/, bad.(<<"title = '", 255, "'">>)

        assert_raise ArgumentError, ~r/type :blob/, fn ->
          Filter.add_shape(f, :x, %{table: @todos, columns: %{"a" => :blob}, where: nil})
        end

        assert_raise ArgumentError, ~r/a shape is a map/, fn -> Filter.add_shape(f, :x, nil) end

        f = add(f, a: {:eq, "user_id", 1})

        assert_raise ArgumentError, ~r/is int4 in other shapes/, fn ->
          Filter.add_shape(f, :b, %{
            table: @todos,
            columns: %{"user_id" => :text},
            where: {:eq, "user_id", "1"}
          })
        end

        assert_raise ArgumentError, ~r/Postgres text/, fn -> ins(f, %{"user_id" => 1}) end
        assert_raise ArgumentError, ~r/a record is a map/, fn -> ins(f, [{"user_id", "1"}]) end

        assert_raise ArgumentError, ~r/expected an :insert/, fn ->
          Filter.affected_shapes(f, :x)
        end

        # the failed calls left the filter as it was
        assert ins(f, %{"user_id" => "1"}) == [:a]
      end
    end

    describe "remove_shape/2, index: #{inspect(mode)}" do
      @describetag mode: mode

      test "an equality in every OR branch: indexed in each column, removed from each",
           %{mode: mode} do
        f =
          new(mode)
          |> add(
            ab: "user_id = 1 OR small = 2",
            nested:
              {:or,
               [{:and, [{:eq, "user_id", 3}, {:gt, "score", 1}]}, {:in, "title", ["x", "y"]}]},
            other: {:eq, "user_id", 1}
          )

        # every shape is found through an index: none is scanned
        for col <- ["user_id", "small", "title"], do: assert(Filter.index_kind(f, @todos, col))
        assert Filter.shape_counts(f, @todos) == %{indexed: 3, scanned: 0}

        assert ins(f, %{"user_id" => "1"}) == [:ab, :other]
        assert ins(f, %{"small" => "2"}) == [:ab]
        assert ins(f, %{"user_id" => "1", "small" => "2"}) == [:ab, :other]
        assert ins(f, %{"user_id" => "3", "score" => "2"}) == [:nested]
        assert ins(f, %{"user_id" => "3", "score" => "0"}) == []
        assert ins(f, %{"title" => "y", "user_id" => "3"}) == [:nested]

        f = Filter.remove_shape(f, :ab)
        assert Filter.index_kind(f, @todos, "small") == nil
        assert ins(f, %{"small" => "2"}) == []
        assert ins(f, %{"user_id" => "1"}) == [:other]
        f = Filter.remove_shape(f, :nested)
        assert Filter.index_kind(f, @todos, "title") == nil
        assert ins(f, %{"title" => "x"}) == []
        f = Filter.remove_shape(f, :other)
        assert Filter.all_shape_ids(f) == MapSet.new()
        assert Filter.shape_counts(f, @todos) == %{indexed: 0, scanned: 0}
      end

      test "several shapes on one value; removing one of them", %{mode: mode} do
        f =
          new(mode) |> add(a: {:eq, "user_id", 1}, b: {:eq, "user_id", 1}, c: {:eq, "user_id", 1})

        assert ins(f, %{"user_id" => "1"}) == [:a, :b, :c]
        f = Filter.remove_shape(f, :b)
        assert ins(f, %{"user_id" => "1"}) == [:a, :c]
        f = f |> Filter.remove_shape(:a) |> Filter.remove_shape(:c) |> Filter.remove_shape(:zz)
        assert ins(f, %{"user_id" => "1"}) == []
        assert Filter.all_shape_ids(f) == MapSet.new()
      end

      test "handles are reused after removal without resurrecting old keys", %{mode: mode} do
        f = new(mode) |> add(a: {:in, "user_id", [1, 2, 3]}, b: {:eq, "user_id", 1})
        f = Filter.remove_shape(f, :a)
        # :c may get :a's handle back
        f = add(f, c: {:in, "user_id", [4, 5]}, d: {:eq, "user_id", 1})
        assert ins(f, %{"user_id" => "1"}) == [:b, :d]
        assert ins(f, %{"user_id" => "2"}) == []
        assert ins(f, %{"user_id" => "4"}) == [:c]
        f = add(f, a: {:eq, "user_id", 2})
        assert ins(f, %{"user_id" => "2"}) == [:a]
        assert ins(f, %{"user_id" => "3"}) == []
      end
    end

    describe "affected_shapes/2, index: #{inspect(mode)}" do
      @describetag mode: mode

      test "routes by value and isolates tables", %{mode: mode} do
        f = new(mode) |> add(a: {:eq, "user_id", 1}, b: {:eq, "user_id", 2})
        f = Filter.add_shape(f, :u, shape({:eq, "user_id", 1}, @users))

        assert ins(f, %{"user_id" => "1"}) == [:a]
        assert ins(f, %{"user_id" => "2"}) == [:b]
        assert ins(f, %{"user_id" => "3"}) == []
        assert ins(f, %{"user_id" => "1"}, @users) == [:u]
        assert ins(f, %{"user_id" => "1"}, {"public", "other"}) == []
        assert sorted(Filter.affected_shapes(f, {:truncate, @todos})) == [:a, :b]
        assert sorted(Filter.affected_shapes(f, {:truncate, {"x", "y"}})) == []
        assert sorted(Filter.all_shape_ids(f)) == [:a, :b, :u]
      end

      test "delete routes on the old record", %{mode: mode} do
        f = new(mode) |> add(a: {:eq, "user_id", 1})
        assert sorted(Filter.affected_shapes(f, {:delete, @todos, %{"user_id" => "1"}})) == [:a]
        assert sorted(Filter.affected_shapes(f, {:delete, @todos, %{"user_id" => "2"}})) == []
      end

      test "an update moving a row between values hits both shapes", %{mode: mode} do
        f =
          new(mode) |> add(a: {:eq, "user_id", 1}, b: {:eq, "user_id", 2}, c: {:eq, "user_id", 3})

        change = {:update, @todos, %{"user_id" => "1"}, %{"user_id" => "2"}}
        assert sorted(Filter.affected_shapes(f, change)) == [:a, :b]
      end

      test "NULL and missing columns match only IS NULL", %{mode: mode} do
        f =
          new(mode)
          |> add(
            eq: {:eq, "user_id", 1},
            ne: {:ne, "user_id", 1},
            not_eq: {:not, {:eq, "user_id", 1}},
            null: {:is_null, "user_id"},
            not_null: {:not, {:is_null, "user_id"}}
          )

        assert ins(f, %{"user_id" => nil}) == [:null]
        assert ins(f, %{"title" => "x"}) == [:null]
        assert ins(f, %{"user_id" => "1"}) == [:eq, :not_null]
        assert ins(f, %{"user_id" => "5"}) == [:ne, :not_eq, :not_null]
      end

      test "three-valued logic: unknown AND false, unknown OR true", %{mode: mode} do
        f =
          new(mode)
          |> add(
            and_false: {:not, {:and, [{:eq, "user_id", 1}, {:eq, "title", "x"}]}},
            or_true: {:or, [{:eq, "user_id", 1}, {:eq, "title", "x"}]},
            null_literal: {:eq, "title", nil},
            in_null: {:not, {:in, "user_id", [2, nil]}},
            scan_and: {:and, [{:ne, "user_id", 1}, {:gt, "score", 1}]},
            scan_or: {:not, {:or, [{:ne, "user_id", 1}, {:gt, "score", 1}]}}
          )

        # scanned (no equality conjunct): NULL AND true is unknown, NOT (NULL OR false) too
        assert ins(f, %{"user_id" => nil, "score" => "2", "title" => "y"}) == [:and_false]
        assert ins(f, %{"user_id" => nil, "score" => "0", "title" => "y"}) == [:and_false]

        # user_id NULL: (NULL AND false) is false, so NOT(...) is true; (NULL OR true) is true
        assert ins(f, %{"user_id" => nil, "title" => "y"}) == [:and_false]
        assert ins(f, %{"user_id" => nil, "title" => "x"}) == [:or_true]
        # 3 NOT IN (2, NULL) is unknown; 2 NOT IN (2, NULL) is false
        assert ins(f, %{"user_id" => "3", "title" => "y"}) == [:and_false]
        assert ins(f, %{"user_id" => "1", "title" => "x"}) == [:or_true]
      end

      test "values are parsed by column type", %{mode: mode} do
        f =
          new(mode)
          |> add(
            int: {:eq, "user_id", 7},
            text: {:eq, "title", "7"},
            uuid: {:eq, "owner", String.upcase(@uuid)},
            bool: {:eq, "done", true},
            float: {:eq, "score", 2},
            gt: {:gt, "score", 1.5}
          )

        assert ins(f, %{"user_id" => "007"}) == [:int]
        assert ins(f, %{"title" => "007"}) == []
        assert ins(f, %{"title" => "7", "user_id" => "7"}) == [:int, :text]
        assert ins(f, %{"owner" => @uuid}) == [:uuid]
        assert ins(f, %{"owner" => String.replace(@uuid, "-", "")}) == [:uuid]
        assert ins(f, %{"done" => "t"}) == [:bool]
        assert ins(f, %{"done" => "f"}) == []
        assert ins(f, %{"score" => "2.0"}) == [:float, :gt]
        assert ins(f, %{"score" => "1.5"}) == []
        assert ins(f, %{"score" => "Infinity"}) == [:gt]
        assert ins(f, %{"score" => "NaN"}) == [:gt]
        assert ins(f, %{"score" => "-Infinity"}) == []
        # PostgreSQL's input rules: white space skipped, uuid_in's spellings
        assert ins(f, %{"user_id" => " 7 "}) == [:int]
        assert ins(f, %{"done" => " t"}) == [:bool]
        assert ins(f, %{"owner" => "{" <> String.upcase(@uuid) <> "}"}) == [:uuid]
      end

      test "an integer literal compares with a smaller column beyond its range", %{mode: mode} do
        f =
          new(mode)
          |> add(
            gt: {:gt, "small", -32_769},
            eq: {:eq, "small", 40_000},
            # beyond i64: a numeric in SQL, compared as such
            lt_huge: {:lt, "small", 2 ** 63},
            eq_huge: {:eq, "id", -(2 ** 63) - 1},
            min: {:eq, "id", -(2 ** 63)}
          )

        assert ins(f, %{"small" => "-32768"}) == [:gt, :lt_huge]
        assert ins(f, %{"small" => "32767"}) == [:gt, :lt_huge]
        assert ins(f, %{"small" => nil}) == []
        assert ins(f, %{"id" => "-9223372036854775808"}) == [:min]
      end

      test "a string literal takes its column's type, as an untyped SQL literal", %{mode: mode} do
        f =
          new(mode)
          |> add(
            int: {:eq, "user_id", " 7"},
            float: {:in, "score", ["-0", "NaN"]},
            bool: {:eq, "done", "yes"},
            uuid: {:eq, "owner", "{" <> String.upcase(@uuid) <> "}"}
          )

        assert ins(f, %{"user_id" => "7"}) == [:int]
        assert ins(f, %{"score" => "0"}) == [:float]
        assert ins(f, %{"score" => "nan"}) == [:float]
        assert ins(f, %{"done" => "t"}) == [:bool]
        assert ins(f, %{"owner" => String.replace(@uuid, "-", "")}) == [:uuid]
      end

      test "an unparseable value routes to the shapes that could take the row", %{mode: mode} do
        f =
          new(mode)
          |> add(
            a: {:eq, "user_id", 1},
            b: {:and, [{:eq, "title", "t"}, {:gt, "user_id", 5}]},
            c: {:eq, "title", "t"},
            d: {:lt, "small", 0}
          )

        # a: found through user_id (any value could have found it); b reads user_id, but is
        # found through title, which rules it out here
        assert ins(f, %{"user_id" => "one", "title" => "u"}) == [:a]
        # b a candidate through title: its residual cannot tell, so it is routed
        assert ins(f, %{"user_id" => "99999999999", "title" => "t"}) == [:a, :b, :c]
        assert ins(f, %{"small" => "40000"}) == [:d]
        assert ins(f, %{"done" => "maybe", "title" => "u"}) == []
      end

      test "shapes without WHERE or without an indexable conjunct see every change",
           %{mode: mode} do
        f = new(mode) |> add(all: nil, range: {:ge, "user_id", 10}, a: {:eq, "user_id", 1})
        assert ins(f, %{"user_id" => "1"}) == [:a, :all]
        assert ins(f, %{"user_id" => "10"}) == [:all, :range]
        assert ins(f, %{}) == [:all]
      end

      test "residuals run in the Rust engine: ILIKE folds as PostgreSQL does", %{mode: mode} do
        f =
          new(mode)
          |> add(
            scanned: {:ilike, "title", "İstanbul%"},
            indexed: {:and, [{:eq, "user_id", 1}, {:ilike, "code", "%σασ"}]},
            final_sigma: {:and, [{:eq, "user_id", 1}, {:ilike, "code", "%σας"}]},
            escaped: {:and, [{:eq, "user_id", 2}, {:not, {:like, "code", "a\\%%"}}]}
          )

        # one character folds to one: İ to i, a final Σ to σ (never ς)
        assert ins(f, %{"title" => "istanbul!"}) == [:scanned]
        assert ins(f, %{"title" => "ISTANBUL"}) == [:scanned]

        assert ins(f, %{"title" => "Istanbul", "user_id" => "1", "code" => "ΣΑΣ"}) == [
                 :indexed,
                 :scanned
               ]

        assert ins(f, %{"user_id" => "1", "code" => "σας"}) == [:final_sigma]
        assert ins(f, %{"user_id" => "2", "code" => "a%b"}) == []
        assert ins(f, %{"user_id" => "2", "code" => "ab"}) == [:escaped]
        assert ins(f, %{"user_id" => "2", "code" => nil}) == []
      end

      test "nested residuals are checked on the candidates", %{mode: mode} do
        where =
          {:and,
           [
             {:eq, "user_id", 1},
             {:or, [{:not, {:eq, "done", true}}, {:and, [{:ge, "score", 2}, {:le, "score", 3}]}]},
             {:and, [{:ne, "title", "hidden"}]}
           ]}

        f = new(mode) |> add(a: where)
        assert ins(f, %{"user_id" => "1", "done" => "f", "title" => "x"}) == [:a]

        assert ins(f, %{"user_id" => "1", "done" => "t", "score" => "2.5", "title" => "x"}) == [
                 :a
               ]

        assert ins(f, %{"user_id" => "1", "done" => "t", "score" => "3.5", "title" => "x"}) == []
        assert ins(f, %{"user_id" => "1", "done" => "f", "title" => "hidden"}) == []
        assert ins(f, %{"user_id" => "2", "done" => "f", "title" => "x"}) == []
      end
    end
  end

  describe "new/1" do
    test "options are validated" do
      assert_raise ArgumentError, ~r/:index must be one of/, fn -> Filter.new(index: :ets) end
      assert_raise ArgumentError, ~r/:auto_threshold/, fn -> Filter.new(auto_threshold: -1) end
      assert_raise ArgumentError, ~r/:lsm_options/, fn -> Filter.new(lsm_options: 3) end
      assert_raise ArgumentError, fn -> Filter.new(unknown: 1) end
      assert %Filter{mode: :map} = Filter.new()
    end

    test ":auto moves a table to the router set above the threshold, keeping every shape" do
      f = Filter.new(index: :auto, auto_threshold: 3)
      f = add(f, a: {:in, "user_id", [1, 2]}, b: {:eq, "user_id", 3}, s: {:gt, "score", 1})
      assert Filter.index_kind(f, @todos, "user_id") == :map
      assert Filter.shape_counts(f, @todos) == %{indexed: 2, scanned: 1}
      map_copy = f
      f = add(f, c: {:eq, "user_id", 4})
      assert Filter.index_kind(f, @todos, "user_id") == :lsm
      # the router set finds `score > 1` through its range index: nothing is scanned
      assert Filter.shape_counts(f, @todos) == %{indexed: 4, scanned: 0}
      assert ins(f, %{"user_id" => "2", "score" => "2"}) == [:a, :s]
      f = Filter.remove_shape(f, :a)
      assert ins(f, %{"user_id" => "1"}) == []
      assert ins(f, %{"user_id" => "4"}) == [:c]
      # another table stays a map table until it passes the threshold itself
      f = Filter.add_shape(f, :u, shape({:eq, "id", 1}, @users))
      assert Filter.index_kind(f, @users, "id") == :map
      assert ins(f, %{"id" => "1"}, @users) == [:u]
      # a shape moving from a map table to the router set, and back
      f = Filter.add_shape(f, :u, shape({:eq, "user_id", 9}))
      assert ins(f, %{"id" => "1"}, @users) == []
      assert ins(f, %{"user_id" => "9"}) == [:u]
      f = Filter.add_shape(f, :u, shape({:eq, "id", 2}, @users))
      assert ins(f, %{"user_id" => "9"}) == []
      assert ins(f, %{"id" => "2"}, @users) == [:u]
      assert Filter.all_shape_ids(f) == MapSet.new([:b, :c, :s, :u])
      # the copy made before the move is still a value of its own
      assert sorted(Filter.affected_shapes(map_copy, {:insert, @todos, %{"user_id" => "1"}})) ==
               [:a]
    end
  end

  describe "scenario: an :auto filter after a move is single-use" do
    test "a copy older than a later change raises" do
      f1 = Filter.new(index: :auto, auto_threshold: 1) |> add(a: {:eq, "user_id", 1})
      f2 = add(f1, b: {:eq, "user_id", 2})
      assert Filter.index_kind(f2, @todos, "user_id") == :lsm
      f3 = add(f2, c: {:eq, "user_id", 3})
      assert_raise ArgumentError, ~r/single-use/, fn -> ins(f2, %{"user_id" => "1"}) end
      assert ins(f3, %{"user_id" => "3"}) == [:c]
      # before the move it was a persistent value
      assert ins(f1, %{"user_id" => "1"}) == [:a]
    end
  end

  describe "scenario: BEAM memory with index: :lsm" do
    test "BEAM memory does not grow with the number of values" do
      size_with = fn n ->
        f = Filter.new(index: :lsm)
        # (the rendered clause must fit the engine's 1 MiB: 100,000 values do)
        f = Filter.add_shape(f, :s, shape({:in, "id", Enum.to_list(1..n)}))
        assert ins(f, %{"id" => Integer.to_string(n)}) == [:s]
        :erts_debug.flat_size(f)
      end

      small = size_with.(10)
      assert size_with.(100_000) == small
      # the map index, for contrast, holds every value
      f =
        Filter.new(index: :map)
        |> Filter.add_shape(:s, shape({:in, "id", Enum.to_list(1..10_000)}))

      assert :erts_debug.flat_size(f) > 10 * small
    end
  end
end
