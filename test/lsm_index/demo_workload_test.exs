defmodule LsmIndex.DemoWorkloadTest do
  # The demo's workload and shapes for issue 26's pgoutput semantics: a TOASTed column that
  # updates mostly leave alone (sent as unchanged TOAST), a column added while streaming
  # (`alter_at`), shapes on both. The model and the shapes without PostgreSQL; one run of
  # the writer on a throwaway cluster (`@tag :end_to_end`).
  use ExUnit.Case, async: true

  alias LsmIndex.Demo.{Postgres, Psql, Schema, Shapes, Transactions, Workload}

  @opts [seed: 3, users: 50, projects: 10, todos: 200, truncate_every: 700]

  # a fresh writer's model, as `Workload` builds it on an empty schema
  defp model(opts, tag \\ false) do
    %{
      opts: opts,
      rand: :rand.seed_s(:exsss, {opts[:seed], 0, 7}),
      txns: 0,
      next: %{"users" => 1, "projects" => 1, "todos" => 1},
      bags: Map.new(Schema.names(), &{&1, Transactions.bag()}),
      tag: tag
    }
  end

  # n transactions' SQL (binaries, in order) and the model after them
  defp run(model, n) do
    Enum.map_reduce(1..n, model, fn _, model ->
      {sql, model} = Transactions.next(model)
      {IO.iodata_to_binary(sql), model}
    end)
  end

  defp statements(sqls), do: Enum.flat_map(sqls, &String.split(&1, ";\n"))
  defp mentions_tag?(sql), do: sql =~ ~r/\btag\b/

  # the single-row todo updates (the bulk re-prioritisation names a project, not an id)
  defp todo_updates(sqls),
    do: sqls |> statements() |> Enum.filter(&(&1 =~ ~r/^UPDATE todos SET .* WHERE id = \d+$/s))

  describe "Schema" do
    test "notes is created, stored out of line; tag is what the workload may add" do
      assert List.last(Schema.columns("todos")) == {"notes", :text}
      refute List.keymember?(Schema.columns("todos"), "tag", 0)
      assert Schema.added_columns() == %{"todos" => [{"tag", :text}]}
      assert Schema.ddl() =~ "ALTER TABLE todos ALTER COLUMN notes SET STORAGE EXTERNAL;"
    end
  end

  describe "Transactions.next/1" do
    setup do
      {sqls, model} = run(model(Keyword.put(@opts, :alter_at, 1000)), 3000)
      %{sqls: sqls, model: model}
    end

    test "alter_at: one ALTER, at that transaction; tag written only after it", %{
      sqls: sqls,
      model: model
    } do
      alters = for {sql, i} <- Enum.with_index(sqls, 1), sql =~ "ALTER TABLE", do: i
      assert alters == [1000]

      assert Enum.at(sqls, 999) ==
               "BEGIN;\nALTER TABLE todos ADD COLUMN tag text;\n" <>
                 "UPDATE demo_progress SET txns = 1000, next_user = 133, next_project = 119, " <>
                 "next_todo = 797;\nCOMMIT;\n"

      {before, rest} = Enum.split(sqls, 999)
      refute Enum.any?(before, &mentions_tag?/1)
      after_ = tl(rest)

      assert Enum.any?(after_, &(&1 =~ ~r/^INSERT INTO todos \(.*, notes, tag\) VALUES/m))
      assert Enum.any?(after_, &(&1 =~ ~r/^INSERT INTO todos .*'(red|green|blue)'\)/ms))
      assert Enum.count(todo_updates(after_), &(&1 =~ ", tag = ")) > 0
      assert model.tag
    end

    test "a writer that knows tag exists never adds it again" do
      # restarted past alter_at (the ALTER committed) or before it: tag already there
      {_sqls, at_1500} = run(model(Keyword.put(@opts, :alter_at, 1000)), 1500)
      {sqls, _} = run(at_1500, 500)
      refute Enum.any?(sqls, &(&1 =~ "ALTER"))

      {sqls, _} = run(model(Keyword.put(@opts, :alter_at, 10), true), 200)
      refute Enum.any?(sqls, &(&1 =~ "ALTER"))
      assert Enum.any?(sqls, &(&1 =~ ~r/, notes, tag\) VALUES/))
    end

    test "alter_at during seeding: the first transaction after it" do
      # seeding: 100 rows a transaction (users, projects, todos twice)
      {sqls, _} = run(model(Keyword.put(@opts, :alter_at, 2)), 10)
      {seeding, [alter | _]} = Enum.split(sqls, 4)
      assert Enum.all?(seeding, &(&1 =~ ~r/^BEGIN;\nINSERT INTO \w+ /))
      assert alter =~ "ALTER TABLE todos ADD COLUMN tag text;"
      assert Enum.count(sqls, &(&1 =~ "ALTER")) == 1
    end

    test "without alter_at, tag never appears" do
      {sqls, _} = run(model(@opts), 3000)
      refute Enum.any?(sqls, &mentions_tag?/1)
    end

    test "notes: long values built by the server, most updates leave notes alone", %{sqls: sqls} do
      inserts = sqls |> statements() |> Enum.filter(&(&1 =~ "INSERT INTO todos"))
      long = Regex.scan(~r/'(\w+) ' \|\| repeat\('([^']+)', (\d+)\)/u, Enum.join(inserts))
      assert length(long) > 100

      for [_, _word, filler, times] <- long do
        chars = String.length(filler) * String.to_integer(times)
        assert chars >= 2980 and chars <= 12_000
      end

      # the SQL stays small: no transaction of the mix carries a long value written out
      assert sqls |> Enum.map(&byte_size/1) |> Enum.drop(5) |> Enum.max() < 4_000

      updates = todo_updates(sqls)
      notes = Enum.count(updates, &(&1 =~ ", notes = "))
      assert length(updates) > 1000
      assert notes > 0
      assert notes / length(updates) < 0.07

      refute Enum.any?(sqls, &(&1 =~ ~r/NaN|Infinity/))
    end

    test "deterministic from the seed", %{sqls: sqls} do
      {again, _} = run(model(Keyword.put(@opts, :alter_at, 1000)), 3000)
      assert again == sqls
    end
  end

  describe "Shapes.one/5" do
    @todos_columns Enum.map(Schema.columns("todos"), &elem(&1, 0))

    # one/4's shapes as they were made before the optional columns (seed 1, 1,000 users,
    # 200 projects)
    @before [
      {0, "todos", "user_id = $1", ["438"]},
      {1, "todos", "project_id = $1 AND priority >= 3", ["120"]},
      {2, "todos", "project_id = $1 AND lower(title) LIKE '%bug%'", ["122"]},
      {3, "todos", "user_id = $1 AND due_at >= '2024-06-01' AND due_at < '2024-07-01'", ["890"]},
      {7, "todos", "project_id IN (166, 53, 103)", []},
      {19, "users", "active AND id IN (793, 83, 397)", []},
      {100, "todos", "user_id = $1", ["509"]},
      {250, "todos", "user_id = $1 AND status <> 'done'", ["962"]},
      {1000, "todos", "user_id = $1", ["506"]},
      {4242, "projects", "owner_id = $1 AND NOT archived", ["925"]}
    ]

    test "one/4 and one/5 without optional columns: the shapes made before them" do
      for {id, table, where, params} <- @before do
        expected = %{id: id, table: table, where: where, params: params}
        assert Shapes.one(id, 1, 1000, 200) == expected
        assert Shapes.one(id, 1, 1000, 200, []) == expected
      end
    end

    test "tag shapes only when tag is known, ~20% of the todos shapes; the rest unchanged" do
      with_tag = @todos_columns ++ ["tag"]

      for known <- [[], @todos_columns, with_tag] do
        shapes = Enum.map(0..1999, &Shapes.one(&1, 5, 500, 100, known))
        assert shapes == Enum.map(0..1999, &Shapes.one(&1, 5, 500, 100, known))
        todos = Enum.filter(shapes, &(&1.table == "todos"))
        tag = Enum.count(todos, &(&1.where =~ "tag"))
        notes = Enum.count(todos, &(&1.where =~ "notes"))

        if "tag" in known do
          assert tag / length(todos) > 0.14 and tag / length(todos) < 0.26
        else
          assert tag == 0
        end

        if "notes" in known, do: assert(notes > 0), else: assert(notes == 0)

        # a shape on neither optional column is the shape one/4 makes
        for shape <- shapes, not (shape.where =~ ~r/tag|notes/) do
          assert shape == Shapes.one(shape.id, 5, 500, 100)
        end
      end

      tags = for id <- 0..1999, do: Shapes.one(id, 5, 500, 100, with_tag)
      wheres = tags |> Enum.map(& &1.where) |> Enum.filter(&(&1 =~ "tag")) |> Enum.uniq()
      assert "tag = $1 AND project_id = $2" in wheres
      assert "user_id = $1 AND tag = 'red'" in wheres
    end
  end

  describe "Shapes.generate/4" do
    test "shapes on notes (one scanned), none on tag" do
      shapes = Shapes.generate(2000, 7, 200, 40)
      assert Enum.at(shapes, 2).where == "length(notes) > 5000"
      assert Enum.any?(shapes, &(&1.where == "user_id = $1 AND notes LIKE 'urgent%'"))
      assert Enum.any?(shapes, &(&1.where == "project_id = $1 AND notes IS NOT NULL"))
      refute Enum.any?(shapes, &(&1.where =~ "tag"))
    end
  end

  describe "Workload on PostgreSQL" do
    @describetag :end_to_end
    @describetag timeout: 300_000

    test "long notes out of line, tag added once mid-stream, a restarted writer carries on" do
      pg = Postgres.start(logical: true)
      on_exit(fn -> Postgres.stop(pg) end)
      admin = Psql.open(pg)
      Psql.run(admin, "CREATE DATABASE workload;")
      Psql.close(admin)
      session = Psql.open(pg, "workload")
      Psql.run(session, Schema.ddl())

      opts = [seed: 11, users: 50, projects: 10, todos: 200, truncate_every: 700, batch: 50]
      writer(pg, opts ++ [txns: 1500, alter_at: 500])
      [next_todo] = Psql.run(session, "SELECT next_todo FROM demo_progress;")

      assert Psql.run(session, """
             SELECT attstorage FROM pg_attribute
               WHERE attrelid = 'todos'::regclass AND attname = 'notes';
             SELECT count(*) FROM information_schema.columns
               WHERE table_name = 'todos' AND column_name = 'tag';
             """) == ["e", "1"]

      [long, toast] =
        Psql.run(session, """
        SELECT count(*) FROM todos WHERE length(notes) > 3000;
        SELECT pg_relation_size(reltoastrelid) FROM pg_class WHERE relname = 'todos';
        """)

      assert String.to_integer(long) > 0
      assert String.to_integer(toast) > 0
      [tagged] = Psql.run(session, "SELECT count(*) FROM todos WHERE tag IS NOT NULL;")
      assert String.to_integer(tagged) > 0

      # restarted with alter_at still set: it learns tag exists (a second ALTER would stop
      # psql, and the writer with it)
      writer(pg, opts ++ [txns: 2500, alter_at: 500])

      [txns, tagged] =
        Psql.run(session, """
        SELECT txns FROM demo_progress;
        SELECT count(*) FROM todos WHERE id >= #{next_todo} AND tag IS NOT NULL;
        """)

      assert txns == "2500"
      assert String.to_integer(tagged) > 0

      Psql.close(session)
    end
  end

  defp writer(pg, opts) do
    Workload.start_link(pg, "workload", opts)
    n = opts[:txns]
    assert_receive {:workload, :done, ^n}, 240_000
  end
end
