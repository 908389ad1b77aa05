defmodule LsmIndex.Filter.EqualityIndexAffectedTest do
  # Index.Protocol.affected_shapes/4 with the host's meaning, on both equality indexes: the
  # index parses its own column of the record and evaluates its candidates' residuals (the
  # rest of the contract: equality_index_test.exs).
  use ExUnit.Case, async: true

  alias LsmIndex.Filter.{EqualityIndex, LsmEqualityIndex, Predicate}
  alias LsmIndex.Filter.Index.Protocol, as: Index
  alias LsmIndex.Test.ReferenceWhere

  @cols %{"id" => :int8, "n" => :int4, "status" => :text, "score" => :float8}

  describe "Index.Protocol.affected_shapes/4, random protocol steps" do
    # 3,000 random add/remove/affected_shapes steps on both indexes (an int8 column "id";
    # shapes `id IN (...) AND <residual over the other columns>`, some without a residual),
    # each answer equal to the map index's and to a brute-force evaluation of every indexed
    # shape by the Elixir reference evaluator (independent of the Rust engine).
    test "both indexes agree with brute force" do
      :rand.seed(:exsss, {11, 13, 17})
      shapes = Map.new(Enum.to_list(1..24) ++ Enum.map(1..12, &"s#{&1}"), &{&1, shape()})
      start = for name <- [:map, :lsm], into: %{}, do: {name, new_index(name, type: :int8)}

      {_indexes, _model, hits} =
        Enum.reduce(1..3_000, {start, %{}, 0}, fn step, {indexes, model, hits} ->
          id = Enum.random(Map.keys(shapes))
          %{lits: lits, compiled: c} = shapes[id]
          some = Enum.take_random(lits, :rand.uniform(length(lits)))
          keys = for lit <- some, do: key_of(lit)

          case :rand.uniform(10) do
            n when n <= 3 ->
              added = MapSet.difference(MapSet.new(some), Map.get(model, id, MapSet.new()))
              keys = for lit <- added, do: key_of(lit)
              indexes = update(indexes, &Index.add_shape_many(&1, keys, id, c.residual))
              {indexes, Map.update(model, id, added, &MapSet.union(&1, added)), hits}

            n when n <= 5 ->
              indexes = update(indexes, &Index.remove_shape_many(&1, keys, id, c.residual))
              left = MapSet.difference(Map.get(model, id, MapSet.new()), MapSet.new(some))

              model =
                if MapSet.size(left) == 0, do: Map.delete(model, id), else: %{model | id => left}

              {indexes, model, hits}

            _ ->
              record = record()
              expected = brute_force(shapes, model, record)

              for {name, idx} <- indexes do
                assert Index.affected_shapes(idx, "id", record, %{}) == expected,
                       "step #{step}, #{name}: #{inspect(record)}"
              end

              {indexes, model, hits + min(MapSet.size(expected), 1)}
          end
        end)

      # the run really routes records to shapes, not only to nothing
      assert hits > 200
    end
  end

  for name <- [:map, :lsm] do
    describe "Index.Protocol.affected_shapes/4, #{name}" do
      test "NULL or missing: none; unparseable: every shape of the index" do
        idx =
          unquote(name)
          |> new_index(type: :int8)
          |> add("id = 1", :a)
          |> add("id IN (1, 2) AND n > 3", "b")
          |> add("id = 3", {:c, 3})

        affected = &Index.affected_shapes(idx, "id", &1, %{})
        assert affected.(%{"id" => nil}) == MapSet.new()
        assert affected.(%{"n" => "5"}) == MapSet.new()
        # NULL n: `n > 3` is unknown, not true
        assert affected.(%{"id" => " 1"}) == MapSet.new([:a])
        assert affected.(%{"id" => "1", "n" => "5"}) == MapSet.new([:a, "b"])
        assert affected.(%{"id" => "2", "n" => "1"}) == MapSet.new()
        # a value that is not an int8: the host's rescue, every shape of this index
        all = MapSet.new([:a, "b", {:c, 3}])
        assert affected.(%{"id" => "x"}) == all
        assert affected.(%{"id" => "99999999999999999999"}) == all

        assert Index.affected_shapes(
                 new_index(unquote(name), type: :int8),
                 "id",
                 %{"id" => "x"},
                 nil
               ) == MapSet.new()

        assert_raise ArgumentError, ~r/Postgres text or nil, got 1/, fn ->
          affected.(%{"id" => 1})
        end

        assert_raise ArgumentError, ~r/a record is a map/, fn -> affected.([{"id", "1"}]) end
      end

      test "a residual that errors, or reads a column that does not parse, routes" do
        idx = unquote(name) |> new_index(type: :int8) |> add("id = 1 AND 10 / n > 1", :s)
        affected = &Index.affected_shapes(idx, "id", %{"id" => "1", "n" => &1}, :ignored)
        assert affected.("5") == MapSet.new([:s])
        assert affected.("20") == MapSet.new()
        assert affected.("0") == MapSet.new([:s]), "division by zero"
        assert affected.("x") == MapSet.new([:s]), "n unparseable"
        assert affected.(nil) == MapSet.new()
      end

      test "over 1,000 residuals to check (a dirty scheduler): the same answer" do
        %{plans: [{"id", keys}], residual: residual} =
          Predicate.compile!("id = 1 AND n > 3", @cols)

        idx =
          Enum.reduce(1..1_100, new_index(unquote(name), type: :int8), fn id, idx ->
            Index.add_shape_many(idx, keys, id, residual)
          end)

        all = MapSet.new(1..1_100)
        assert Index.affected_shapes(idx, "id", %{"id" => "1", "n" => "5"}, %{}) == all
        assert Index.affected_shapes(idx, "id", %{"id" => "1", "n" => "x"}, %{}) == all
        assert Index.affected_shapes(idx, "id", %{"id" => "1", "n" => "2"}, %{}) == MapSet.new()
      end

      test "a pseudo column: lower(status), the key of lower of the record's status" do
        idx =
          unquote(name)
          |> new_index(type: :text)
          |> add("lower(status) = 'abc'", :plain)
          |> add("lower(status) = 'abc' AND n > 1", :with_n)

        field = "\0lower\0status"
        affected = &Index.affected_shapes(idx, field, &1, %{})
        assert affected.(%{"status" => "ABC", "n" => "2"}) == MapSet.new([:plain, :with_n])
        assert affected.(%{"status" => "aBc", "n" => "1"}) == MapSet.new([:plain])
        assert affected.(%{"status" => "abd", "n" => "2"}) == MapSet.new()
        assert affected.(%{"n" => "2"}) == MapSet.new()
      end

      test "needs the column's type (or a key function), and compiled residuals (or eval:)" do
        idx = unquote(name) |> new_index([]) |> Index.add_shape("k", :s, nil)

        assert_raise ArgumentError, ~r/needs the column's type/, fn ->
          Index.affected_shapes(idx, "id", %{"id" => "1"}, %{})
        end

        assert_raise ArgumentError, ~r/:type is a column type/, fn ->
          new_index(unquote(name), type: :int9)
        end

        # without eval:, residuals are the filter's compiled ones
        idx = unquote(name) |> new_index(type: :int8) |> add("id = 1", :s)
        %{plans: [{"id", [key]}]} = Predicate.compile!("id = 1", @cols)
        idx = Index.add_shape(idx, key, :t, {:not, :a, :residual})

        assert_raise ArgumentError, fn ->
          Index.affected_shapes(idx, "id", %{"id" => "1"}, %{})
        end
      end

      test "host-style: key: and eval: hooks, integer constants and fun residuals" do
        # as a filter written against the host uses it: its typed constants as keys, its
        # and_where terms evaluated by its own evaluator, given the shapes
        :rand.seed(:exsss, {19, 23, 29})
        eval = fn and_where, record, shapes -> and_where.(record, shapes) end
        idx = new_index(unquote(name), key: &host_key/1, eval: eval)
        shapes = Map.new(1..16, &{&1, host_shape(&1)})

        Enum.reduce(1..1_000, {idx, %{}}, fn step, {idx, model} ->
          id = Enum.random(1..16)
          {consts, and_where} = shapes[id]

          case :rand.uniform(3) do
            1 ->
              added = Enum.reject(consts, &(&1 in Map.get(model, id, [])))
              idx = Index.add_shape_many(idx, added, id, and_where)
              {idx, Map.put(model, id, consts)}

            2 ->
              {Index.remove_shape_many(idx, Map.get(model, id, []), id, and_where),
               Map.delete(model, id)}

            3 ->
              record = %{
                "id" => Enum.random(["1", "2", "3", "4", "x", "none", nil]),
                "n" => Enum.random(["1", "2"])
              }

              got = Index.affected_shapes(idx, "id", record, %{flag: true})

              assert got == host_brute_force(shapes, model, record),
                     "step #{step}: #{inspect(record)}"

              {idx, model}
          end
        end)
      end
    end
  end

  describe "Predicate.record_key!/3 and Predicate.eval_record!/3" do
    test "the key the filter indexes, nil, :bad, and the errors apart" do
      parser = Predicate.parser(:int8)
      [{"id", [seven]}] = Predicate.compile!("id = 7", @cols).plans
      assert Predicate.record_key!(parser, "id", %{"id" => "07 "}) == seven
      assert Predicate.record_key!(parser, "id", %{"id" => nil}) == nil
      assert Predicate.record_key!(parser, "id", %{}) == nil
      assert Predicate.record_key!(parser, "id", %{"id" => "7x"}) == :bad
      assert Predicate.record_key!(parser, "id", %{"id" => <<255>>}) == :bad

      assert_raise ArgumentError, ~r/got :seven/, fn ->
        Predicate.record_key!(parser, "id", %{"id" => :seven})
      end

      assert_raise ArgumentError, fn -> Predicate.record_key!(parser, :id, %{}) end

      mood = Predicate.parser({:enum, "mood", ["sad", "ok"]})
      cols = %{"m" => {:enum, "mood", ["sad", "ok"]}}
      [{"m", [ok]}] = Predicate.compile!("m = 'ok'", cols).plans
      assert Predicate.record_key!(mood, "m", %{"m" => "ok"}) == ok
      assert Predicate.record_key!(mood, "m", %{"m" => "happy"}) == :bad
      assert_raise ArgumentError, fn -> Predicate.parser(:int9) end
    end

    test "small and dirty evaluation answer alike; a record value not text raises" do
      %{residual: r} = Predicate.compile!("id = 1 AND 10 / n > 1", @cols)
      checks = [{:a, r}, {:b, r}]

      for n <- ["5", "20", "0", "x", nil] do
        record = %{"n" => n}
        small = Predicate.eval_record!(record, checks, 2)
        assert Predicate.eval_record!(record, checks, 1_001) == small
      end

      assert Predicate.eval_record!(%{"n" => "5"}, checks, 2) == {[:b, :a], []}
      assert Predicate.eval_record!(%{"n" => "0"}, checks, 2) == {[], [:b, :a]}
      assert Predicate.eval_record!(%{"n" => "x"}, checks, 2) == {[], [:b, :a]}

      assert_raise ArgumentError, ~r/got 5 for "n"/, fn ->
        Predicate.eval_record!(%{"n" => 5}, checks, 2)
      end
    end
  end

  defp new_index(:map, opts), do: EqualityIndex.new(opts)
  defp new_index(:lsm, opts), do: LsmEqualityIndex.new([lanes: 2, overlay_limit: 4] ++ opts)

  defp add(idx, sql, shape_id) do
    %{plans: [{_column, keys}], residual: residual} = Predicate.compile!(sql, @cols)
    Index.add_shape_many(idx, keys, shape_id, residual)
  end

  defp host_key(text) do
    case {Integer.parse(text), text} do
      {{int, ""}, _} -> {:ok, int}
      {_, "none"} -> :null
      _ -> :error
    end
  end

  # `id IN consts`, and a residual on n's parity (reading the shapes given), or none
  defp host_shape(id) do
    consts = Enum.uniq(for _ <- 0..:rand.uniform(2), do: :rand.uniform(4))
    parity = rem(id, 3)

    and_where =
      if parity != 2,
        do: fn record, %{flag: true} -> rem(String.to_integer(record["n"]), 2) == parity end

    {consts, and_where}
  end

  defp host_brute_force(shapes, model, record) do
    case record["id"] && host_key(record["id"]) do
      :error ->
        MapSet.new(Map.keys(model))

      {:ok, key} ->
        for {id, consts} <- model,
            key in consts,
            {_, and_where} = shapes[id],
            and_where == nil or and_where.(record, %{flag: true}),
            into: MapSet.new(),
            do: id

      _null ->
        MapSet.new()
    end
  end

  defp update(indexes, fun), do: Map.new(indexes, fn {name, idx} -> {name, fun.(idx)} end)

  # a shape: `id IN lits` and a residual without an equality (so the plan is on "id")
  defp shape do
    lits = Enum.uniq(for _ <- 0..:rand.uniform(3), do: :rand.uniform(8))

    where =
      if :rand.uniform(4) == 1, do: {:in, "id", lits}, else: {:and, [{:in, "id", lits}, rest(2)]}

    case Predicate.compile!(where, @cols) do
      %{plans: [{"id", _}]} = c ->
        %{lits: lits, where: ReferenceWhere.normalize!(where, @cols), compiled: c}

      _other_plan ->
        shape()
    end
  end

  defp rest(depth) do
    case :rand.uniform(if depth > 0, do: 8, else: 5) do
      n when n <= 3 -> {Enum.random([:ne, :lt, :le, :gt, :ge]), "n", :rand.uniform(8) - 2}
      4 -> {Enum.random([:lt, :ge]), "score", Enum.random([0.5, 1.0, 2.5])}
      5 -> {:is_null, Enum.random(["n", "status", "score"])}
      6 -> {:and, [rest(depth - 1), rest(depth - 1)]}
      7 -> {:or, [rest(depth - 1), rest(depth - 1)]}
      8 -> {:not, rest(depth - 1)}
    end
  end

  # the value key of literal `lit` of "id" (as a plan holds it)
  defp key_of(lit) do
    [{"id", [key]}] = Predicate.compile!({:eq, "id", lit}, @cols).plans
    key
  end

  defp record do
    for {col, type} <- @cols, reduce: %{} do
      acc ->
        case :rand.uniform(16) do
          1 -> acc
          2 -> Map.put(acc, col, nil)
          3 -> Map.put(acc, col, if(type == :text, do: "x", else: Enum.random(["x", "1.5", ""])))
          _ -> Map.put(acc, col, text(type))
        end
    end
  end

  defp text(:int8),
    do: Enum.random(["#{:rand.uniform(9)}", " #{:rand.uniform(9)}", "0#{:rand.uniform(9)}"])

  defp text(:int4), do: "#{:rand.uniform(8) - 2}"
  defp text(:float8), do: Enum.random(["0.5", "1", "2.50", "-1"])
  defp text(:text), do: Enum.random(["a", "b"])

  # every indexed shape whose key matches, evaluated: NULL/missing id none, a bad id all
  defp brute_force(shapes, model, record) do
    {row, bad} = parse(record)

    cond do
      "id" in bad ->
        MapSet.new(Map.keys(model))

      not Map.has_key?(row, "id") ->
        MapSet.new()

      true ->
        for {id, lits} <- model,
            row["id"] in lits,
            %{where: where, compiled: c} = shapes[id],
            c.residual == nil or
              MapSet.size(MapSet.intersection(ReferenceWhere.columns(where), bad)) > 0 or
              ReferenceWhere.matches?(where, row),
            into: MapSet.new(),
            do: id
    end
  end

  defp parse(record) do
    Enum.reduce(@cols, {%{}, MapSet.new()}, fn {col, type}, {row, bad} ->
      case Map.get(record, col) do
        nil ->
          {row, bad}

        text ->
          case ReferenceWhere.parse(type, text) do
            {:ok, v} -> {Map.put(row, col, v), bad}
            :error -> {row, MapSet.put(bad, col)}
          end
      end
    end)
  end
end
