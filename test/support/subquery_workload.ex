defmodule LsmIndex.Test.SubqueryWorkload do
  @moduledoc """
  The PostgreSQL side of the subquery differential test (issue 23, plan §6): a schema of three
  tables, subquery shapes from parameterised templates, random transactions run in PostgreSQL,
  and PostgreSQL's state before and after every statement. What a router must answer from
  those states is `LsmIndex.Test.SubqueryExpected`'s (pure).

  Tables (no keys but the primary ones; the FK-like columns are nullable and take few
  values, so subquery counts collide and NULLs come and go):

      orgs(id int8 primary key, name text, active bool)                      ids 1..8
      projects(id int8 primary key, org_id int8, owner_id int8, archived bool)   ids 1..18
      issues(id int8 primary key, project_id int8, assignee_id int8, parent_id int8,
             tags int4[])                                                    ids 1..45
      comments(id int8 primary key, issue_id int8, author_id int8, score int4)  ids 1..40

  No subquery reads `comments`: its updates take the router's update path (old row, then
  the new row's changed columns) rather than the row-by-row route of a table some view
  reads, which every other table is.

  A shape (`shapes/2`) is a map: `id`, `table` (the outer one), `template`, `sql` (with `$n`),
  `params`, `where` (the WHERE PostgreSQL runs: each `$n` inlined as an untyped literal, which
  it types from the context as it would type the parameter), and `positions` in the textual
  order of their `SELECT`,
  each `%{position, polarity, arity, columns, table, types, parent, view, seed}`: `columns`
  are the outer row's tested columns (`nil` for a nested subquery, which tests its parent's
  rows), `types` the PostgreSQL types of its select list,
  `view` the runnable SQL of the subquery's result (for a chain's head the whole chain:
  the derived view the shape tests), `seed` `{sql, :rows | :link}` what `subquery_values`
  takes for it (a chain's level with a nested subquery: its link rows `SELECT y, x FROM t2
  WHERE rest`, plan §2.5).

  A shape added with an old snapshot (`stale/4`: its subqueries' results as of an earlier
  state) has its own views, plan §4.4: each = the snapshot + the stream since = PostgreSQL's
  result now + `diff` (the snapshot minus the result when it was added, a ℤ-multiset), until
  a truncate of the subquery's table empties it (the router drops the diff: the view is
  exact again). Its `where` for the state is the clause with each such subquery replaced by
  that own view in SQL, so the state's `matches` are what it must be routed by; the
  truncates are counted in a table `subq_gen` (`gens` in the state) to tell when the diff
  was dropped. The state also holds its plain `where`'s matches, under `{:plain, id}`.

  One `psql` session (`LsmIndex.Demo.Psql`) runs everything; a transaction is one round
  trip: `BEGIN`, the state, then per statement the statement (`RETURNING` the old and new
  rows in PostgreSQL's text) and the state again, `COMMIT`, and a dump of the tables that
  checks the row mirror kept here. The state is one prepared statement (`register/2`: planned
  once per set of shapes) that returns each distinct shape WHERE's matching ids and each
  distinct subquery's result rows.

  Randomness is `:rand`'s process state: seed it first.
  """

  alias LsmIndex.Demo.Psql

  @tables [
    {{"public", "orgs"}, [{"id", :int8}, {"name", :text}, {"active", :bool}]},
    {{"public", "projects"},
     [{"id", :int8}, {"org_id", :int8}, {"owner_id", :int8}, {"archived", :bool}]},
    {{"public", "issues"},
     [
       {"id", :int8},
       {"project_id", :int8},
       {"assignee_id", :int8},
       {"parent_id", :int8},
       {"tags", {:array, :int4}}
     ]},
    {{"public", "comments"},
     [{"id", :int8}, {"issue_id", :int8}, {"author_id", :int8}, {"score", :int4}]}
  ]
  @columns Map.new(@tables)
  @orgs {"public", "orgs"}
  @projects {"public", "projects"}
  @issues {"public", "issues"}
  @comments {"public", "comments"}

  # Ids a table's rows take (inserts pick a free one: ids are reused after deletes) and the
  # size the generator keeps it near.
  @ids %{@orgs => 1..8, @projects => 1..18, @issues => 1..45, @comments => 1..40}
  @target %{@orgs => 6, @projects => 13, @issues => 32, @comments => 28}
  @names ["acme", "beta", "o'hara", "zeta corp"]

  @typedoc "A row: column => PostgreSQL text or nil."
  @type record :: %{String.t() => String.t() | nil}
  @typedoc "A change in the router's form."
  @type change ::
          {:insert, {String.t(), String.t()}, record()}
          | {:update, {String.t(), String.t()}, record(), record()}
          | {:delete, {String.t(), String.t()}, record()}
          | {:truncate, {String.t(), String.t()}}
  @typedoc "The rows of every table: table => id => record."
  @type mirror :: %{{String.t(), String.t()} => %{integer() => record()}}
  @typedoc """
  PostgreSQL's state at one point: each shape's matching ids, each subquery result (keyed by
  its SQL) as a multiset: value (text, a list for composites) => count, `nil` => the rows
  with a NULL (any NULL component), absent keys count 0; and `gens`, how many times each
  table was truncated.
  """
  @type state :: %{
          matches: %{term() => MapSet.t(integer())},
          views: %{String.t() => map()},
          gens: %{{String.t(), String.t()} => non_neg_integer()}
        }

  @doc "The four tables: orgs, projects, issues, comments."
  @spec tables() :: [{String.t(), String.t()}]
  def tables, do: Enum.map(@tables, &elem(&1, 0))

  @doc "The router's tables: `%{{schema, table} => [{column, type}]}`."
  @spec router_tables() :: %{{String.t(), String.t()} => [{String.t(), term()}]}
  def router_tables, do: @columns

  ## Shapes

  # {name, weight, outer table, sql, parameters, per position in textual order {polarity,
  # tested outer columns}}. Parameters are drawn by kind from the columns' small domains (so
  # shapes share subqueries); `#k` and `#j` are tag constants drawn per shape. A nested
  # subquery tests its parent's rows: its columns are nil. The rest of each position (table,
  # select list, WHERE, parent, link) is read from the SQL (`subqueries/1`).
  @templates [
    {:in_owner, 3, "issues", "project_id IN (SELECT id FROM projects WHERE owner_id = $1)",
     [:owner], [positive: ["project_id"]]},
    {:not_in_owner, 3, "issues",
     "project_id NOT IN (SELECT id FROM projects WHERE owner_id = $1)", [:owner],
     [negative: ["project_id"]]},
    {:or_in, 2, "issues",
     "assignee_id = $1 OR project_id IN (SELECT id FROM public.projects WHERE owner_id = $2)",
     [:owner, :owner], [positive: ["project_id"]]},
    {:not_paren_in, 2, "issues", "NOT (project_id IN (SELECT id FROM projects WHERE archived))",
     [], [negative: ["project_id"]]},
    {:any_org, 2, "issues", ~s|project_id = ANY (SELECT id FROM "projects" WHERE org_id = $1)|,
     [:org], [positive: ["project_id"]]},
    {:all_owner, 3, "issues",
     "assignee_id <> ALL (SELECT owner_id FROM projects WHERE org_id = $1)", [:org],
     [negative: ["assignee_id"]]},
    {:composite, 3, "issues",
     "(project_id, assignee_id) IN (SELECT id, owner_id FROM projects WHERE org_id = $1 OR archived)",
     [:org], [positive: ["project_id", "assignee_id"]]},
    # comments: read by no subquery (the update path), each beside a conjunct no index
    # serves, so the shape is found through its view and an update of the other column
    # alone can move a row in or out
    {:c_in_and_not, 3, "comments",
     "issue_id IN (SELECT id FROM issues WHERE assignee_id = $1) AND NOT (author_id = $2)",
     [:owner, :owner], [positive: ["issue_id"]]},
    {:c_composite_and, 2, "comments",
     "(issue_id, author_id) IN (SELECT id, assignee_id FROM issues WHERE project_id = $1) " <>
       "AND score IS NOT NULL", [:project], [positive: ["issue_id", "author_id"]]},
    {:c_not_in_and, 2, "comments",
     "issue_id NOT IN (SELECT id FROM issues WHERE tags @> ARRAY[#k]) AND NOT (score = 1)", [],
     [negative: ["issue_id"]]},
    {:self_ref, 3, "issues", "parent_id IN (SELECT id FROM issues WHERE assignee_id = $1)",
     [:owner], [positive: ["parent_id"]]},
    {:self_ref_tags_not, 2, "issues",
     "parent_id NOT IN (SELECT id FROM issues WHERE tags @> ARRAY[#k])", [],
     [negative: ["parent_id"]]},
    {:two_subqueries, 3, "issues",
     "assignee_id = $1 AND project_id IN (SELECT id FROM projects WHERE NOT archived) " <>
       "AND parent_id NOT IN (SELECT id FROM issues WHERE project_id = $2)", [:owner, :project],
     [positive: ["project_id"], negative: ["parent_id"]]},
    {:not_or, 2, "issues",
     "NOT (assignee_id = $1 OR project_id IN (SELECT id FROM projects WHERE owner_id = $2))",
     [:owner, :owner], [negative: ["project_id"]]},
    {:or_not, 2, "issues",
     "project_id IN (SELECT id FROM projects WHERE owner_id = $1) " <>
       "OR NOT (assignee_id IN (SELECT owner_id FROM projects WHERE org_id = $2))",
     [:owner, :org], [positive: ["project_id"], negative: ["assignee_id"]]},
    {:tags_or, 1, "issues",
     "tags && ARRAY[#k, #j] OR project_id IN (SELECT id FROM projects WHERE org_id IS NULL)", [],
     [positive: ["project_id"]]},
    {:not_in_whole, 2, "issues", "assignee_id NOT IN (SELECT owner_id FROM projects)", [],
     [negative: ["assignee_id"]]},
    {:not_not, 1, "issues",
     "NOT (NOT (project_id IN (SELECT id FROM projects WHERE owner_id = $1)))", [:owner],
     [positive: ["project_id"]]},
    {:not_not_in, 1, "issues",
     "NOT (assignee_id NOT IN (SELECT owner_id FROM projects WHERE archived)) OR tags IS NULL",
     [], [positive: ["assignee_id"]]},
    {:self_values_any, 2, "issues",
     "project_id IN (SELECT project_id FROM issues WHERE $1 = ANY(tags))", [:tag],
     [positive: ["project_id"]]},
    {:composite_self, 2, "issues",
     "assignee_id IS NOT NULL AND (parent_id, project_id) IN " <>
       "(SELECT id, project_id FROM issues WHERE assignee_id = $1)", [:owner],
     [positive: ["parent_id", "project_id"]]},
    {:not_in_self_nullable, 3, "issues",
     "project_id NOT IN (SELECT project_id FROM issues WHERE assignee_id = $1)", [:owner],
     [negative: ["project_id"]]},
    {:p_active, 2, "projects", "org_id IN (SELECT id FROM orgs WHERE active)", [],
     [positive: ["org_id"]]},
    {:p_not_named, 2, "projects", "org_id NOT IN (SELECT id FROM orgs WHERE name = $1)", [:name],
     [negative: ["org_id"]]},
    {:p_owner_assignee, 2, "projects",
     "owner_id IN (SELECT assignee_id FROM issues WHERE project_id = $1)", [:project],
     [positive: ["owner_id"]]},
    {:p_or_not_in, 3, "projects",
     "archived OR id NOT IN (SELECT project_id FROM issues WHERE assignee_id = $1)", [:owner],
     [negative: ["id"]]},
    {:p_not_tags, 1, "projects",
     "NOT (id IN (SELECT project_id FROM issues WHERE tags @> ARRAY[#k]))", [],
     [negative: ["id"]]},
    {:o_owner, 2, "orgs", "id IN (SELECT org_id FROM projects WHERE owner_id = $1)", [:owner],
     [positive: ["id"]]},
    {:o_not_archived, 3, "orgs",
     "active AND id NOT IN (SELECT org_id FROM projects WHERE archived)", [], [negative: ["id"]]}
  ]

  # Chains (plan §2.5): each nested level a positive top-level AND conjunct of its parent.
  @nested_templates [
    {:chain2, 3, "issues",
     "project_id IN (SELECT id FROM projects WHERE org_id IN (SELECT id FROM orgs WHERE active))",
     [], [positive: ["project_id"], positive: nil]},
    {:chain2_params, 3, "issues",
     "project_id IN (SELECT id FROM projects WHERE org_id IN " <>
       "(SELECT id FROM orgs WHERE name = $1) AND owner_id = $2)", [:name, :owner],
     [positive: ["project_id"], positive: nil]},
    {:chain3, 2, "issues",
     "parent_id IN (SELECT id FROM issues WHERE project_id IN " <>
       "(SELECT id FROM projects WHERE org_id IN (SELECT id FROM orgs WHERE active)))", [],
     [positive: ["parent_id"], positive: nil, positive: nil]},
    {:chain_not, 2, "issues",
     "NOT (project_id IN (SELECT id FROM projects WHERE org_id IN " <>
       "(SELECT id FROM orgs WHERE active)))", [], [negative: ["project_id"], positive: nil]},
    {:chain_self, 2, "projects",
     "id IN (SELECT project_id FROM issues WHERE assignee_id = $1 AND parent_id IN " <>
       "(SELECT id FROM issues WHERE tags @> ARRAY[#k]))", [:owner],
     [positive: ["id"], positive: nil]}
  ]

  @doc """
  `n` shapes with ids `1..n`: each template once (while `n` allows), in random order, then
  by the templates' weights. Options: `nested` (default `false`): chains of depth 2–3 too
  (the router refuses them at first).
  """
  @spec shapes(pos_integer(), keyword()) :: [map()]
  def shapes(n, opts \\ []) do
    opts = Keyword.validate!(opts, nested: false)
    templates = if opts[:nested], do: @templates ++ @nested_templates, else: @templates
    weighted = for {name, weight, _, _, _, _} <- templates, do: {name, weight}
    each = weighted |> Enum.map(&elem(&1, 0)) |> Enum.shuffle()
    names = Enum.take(each, n) ++ for(_ <- 1..(n - length(each))//1, do: pick(weighted))
    for {name, id} <- Enum.with_index(names, 1), do: shape(id, name)
  end

  @doc "Every template's name (`nested: true` adds the chains)."
  @spec templates(keyword()) :: [atom()]
  def templates(opts \\ []) do
    templates = if opts[:nested], do: @templates ++ @nested_templates, else: @templates
    for {name, _, _, _, _, _} <- templates, do: name
  end

  @doc "One shape of template `name` with id `id` (parameters drawn now)."
  @spec shape(term(), atom()) :: map()
  def shape(id, name) do
    {^name, _, table, sql, kinds, occurrences} =
      List.keyfind(@templates ++ @nested_templates, name, 0)

    sql = Regex.replace(~r/#[kj]/, sql, fn _ -> Integer.to_string(:rand.uniform(4)) end)
    params = Enum.map(kinds, &param/1)
    found = subqueries(sql)

    unless length(found) == length(occurrences),
      do: raise("template #{name}: #{length(found)} subqueries, #{length(occurrences)} listed")

    positions =
      for {{polarity, columns}, sub, position} <- Enum.zip([occurrences, found, 0..99]) do
        child = Enum.find(found, &(&1.parent == position))
        position(sub, child, position, polarity, columns, params)
      end

    %{
      id: id,
      template: name,
      table: {"public", table},
      sql: sql,
      params: params,
      where: inline(sql, params),
      positions: positions
    }
  end

  @doc "A shape in one line, for failure messages."
  @spec describe(map()) :: String.t()
  def describe(shape) do
    {schema, table} = shape.table

    pols =
      Enum.map_join(shape.positions, ", ", fn p ->
        "#{p.position}: #{p.polarity}#{if p.parent, do: " nested in #{p.parent}"}"
      end)

    stale = if age = shape[:snapshot_age], do: ", a snapshot #{age} transactions old", else: ""

    "shape #{shape.id} (#{shape.template}) on #{schema}.#{table}: `#{shape.sql}` " <>
      "params #{inspect(shape.params)} [#{pols}]#{stale}"
  end

  # The `(SELECT … FROM t [WHERE …])` of `sql` in the textual order of their SELECT, each
  # %{select, table (as written), where, parent, text (between the parentheses)}; parent: the
  # index of the innermost one around it.
  defp subqueries(sql) do
    starts = for [{at, _}] <- Regex.scan(~r/\(SELECT /, sql, return: :index), do: at

    spans = for at <- starts, do: {at, closing(sql, at + 1, 0)}

    for {{from, to}, i} <- Enum.with_index(spans) do
      text = binary_part(sql, from + 1, to - from - 1)

      [_, select, table, where] =
        (Regex.run(~r/^SELECT\s+(.+?)\s+FROM\s+([\w."]+)(?:\s+WHERE\s+(.*))?$/s, text) ++ [nil])
        |> Enum.take(4)

      parent =
        spans
        |> Enum.with_index()
        |> Enum.filter(fn {{f, t}, j} -> j < i and f < from and to < t end)
        |> Enum.map(&elem(&1, 1))
        |> List.last()

      %{select: select, table: table, where: where, parent: parent, text: text}
    end
  end

  # the index of the parenthesis closing the one before `at`
  defp closing(sql, at, depth) do
    case :binary.at(sql, at) do
      ?) when depth == 0 -> at
      ?) -> closing(sql, at + 1, depth - 1)
      ?( -> closing(sql, at + 1, depth + 1)
      _ -> closing(sql, at + 1, depth)
    end
  end

  defp position(sub, child, position, polarity, columns, params) do
    from = "SELECT #{sub.select} FROM #{sub.table}"
    view = inline(if(sub.where, do: "#{from} WHERE #{sub.where}", else: from), params)
    table = table_name(sub.table)
    types = Map.new(@columns[table])

    %{
      position: position,
      polarity: polarity,
      arity: sub.select |> String.split(",") |> length(),
      columns: columns,
      table: table,
      types: for(c <- String.split(sub.select, ","), do: pg_type(types[String.trim(c)])),
      parent: sub.parent,
      view: view,
      seed: seed(sub, child, view, params)
    }
  end

  # A level whose WHERE holds a nested `y IN (SELECT …)` conjunct is seeded with its link
  # rows, `SELECT y, <select> FROM t WHERE <the other conjuncts>` (plan §2.5); the others
  # with their result rows.
  defp seed(_sub, nil, view, _params), do: {view, :rows}

  defp seed(sub, child, _view, params) do
    [before, after_] = String.split(sub.where, "(#{child.text})", parts: 2)
    [_, lead, y] = Regex.run(~r/^(.*?)(\w+)\s+IN\s+$/s, before)

    rest =
      [lead, after_]
      |> Enum.map(&(&1 |> String.trim() |> String.replace(~r/^AND\s+|\s+AND$/, "")))
      |> Enum.reject(&(&1 == ""))
      |> Enum.join(" AND ")

    link = "SELECT #{y}, #{sub.select} FROM #{sub.table}"
    {inline(if(rest == "", do: link, else: "#{link} WHERE #{rest}"), params), :link}
  end

  defp table_name(text) do
    name = text |> String.replace_prefix("public.", "") |> String.trim(~s|"|)
    {"public", name}
  end

  # `$n` replaced by the n-th parameter as an untyped literal (PostgreSQL types it from its
  # context, as it types a parameter).
  defp inline(sql, params) do
    Regex.replace(~r/\$(\d+)/, sql, fn _, n ->
      params |> Enum.at(String.to_integer(n) - 1) |> Psql.literal()
    end)
  end

  defp pick(weighted) do
    total = weighted |> Enum.map(&elem(&1, 1)) |> Enum.sum()
    r = :rand.uniform(total)

    Enum.reduce_while(weighted, r, fn {name, w}, left ->
      if left <= w, do: {:halt, name}, else: {:cont, left - w}
    end)
  end

  defp param(:owner), do: Integer.to_string(:rand.uniform(5))
  defp param(:org), do: Integer.to_string(:rand.uniform(9))
  defp param(:project), do: Integer.to_string(:rand.uniform(19))
  defp param(:tag), do: Integer.to_string(:rand.uniform(4))
  defp param(:name), do: Enum.random(Enum.take(@names, 3))

  ## PostgreSQL

  @doc """
  Opens a session on `pg` (`LsmIndex.Test.Postgres.start/1`'s cluster) and creates the three
  tables anew, empty. Returns the workload's database handle.
  """
  @spec open(LsmIndex.Demo.Postgres.t()) :: map()
  def open(pg) do
    session = Psql.open(pg)

    ddl =
      for {{_, name}, cols} <- @tables do
        defs =
          Enum.map_join(cols, ", ", fn
            {"id", type} -> "id #{pg_type(type)} PRIMARY KEY"
            {col, type} -> "#{col} #{pg_type(type)}"
          end)

        "DROP TABLE IF EXISTS #{name}; CREATE TABLE #{name} (#{defs});\n"
      end

    gens = Enum.map_join(@tables, ", ", fn {{_, name}, _} -> "('#{name}', 0)" end)

    gen =
      "DROP TABLE IF EXISTS subq_gen; CREATE TABLE subq_gen (t text PRIMARY KEY, n int8);\n" <>
        "INSERT INTO subq_gen VALUES #{gens};\n"

    Psql.run(session, [ddl, gen])
    db = %{session: session, matches: [], views: []}
    register(db, [])
  end

  @doc "Ends the session."
  @spec close(map()) :: :ok
  def close(db), do: Psql.close(db.session)

  @doc "Inserts the first rows (each table about half its usual size): the mirror."
  @spec populate(map()) :: mirror()
  def populate(db) do
    inserts =
      for {table, _} <- @tables,
          id <- Enum.take_random(@ids[table], div(@target[table], 2) + 1),
          do: {:insert, table, id, random_row(table)}

    lines = Psql.run(db.session, Enum.map(inserts, &statement_sql/1))
    empty = Map.new(@tables, fn {t, _} -> {t, %{}} end)

    Enum.zip(inserts, lines)
    |> Enum.reduce(empty, fn {{:insert, table, _, _}, line}, mirror ->
      {:insert, ^table, rec} = parse_change(line, table)
      put_row(mirror, table, rec)
    end)
  end

  @doc """
  Makes `shapes` the ones the state reads: one prepared statement returning the matching
  ids of each distinct (table, WHERE) and the rows of each distinct subquery result (the
  views of top-level positions).
  """
  @spec register(map(), [map()]) :: map()
  def register(db, shapes) do
    # a stale shape's matches under its own views, and under `{:plain, id}` PostgreSQL's
    by_id =
      for s <- shapes,
          pair <- [{s.id, match_sql(s)}] ++ if(s[:snapshot_age], do: [plain(s)], else: []),
          do: pair

    matches = by_id |> Enum.map(&elem(&1, 1)) |> Enum.uniq()

    views =
      for(s <- shapes, p <- s.positions, p.parent == nil, do: {p.view, p.arity})
      |> Enum.uniq()

    # ids comma-separated; a view's rows comma-separated, a row's columns colon-separated, `~`
    # for NULL (the subqueries select int8 columns: their text holds none of these)
    branches =
      Enum.with_index(matches, fn sql, i ->
        "SELECT 'm #{i} ' || coalesce((SELECT string_agg(id::text, ',' ORDER BY id) " <>
          "FROM (#{sql}) q), '')"
      end) ++
        Enum.with_index(views, fn {sql, arity}, i ->
          cols = Enum.map_join(1..arity, ", ", &"c#{&1}")
          enc = Enum.map_join(1..arity, " || ':' || ", &"coalesce(c#{&1}::text, '~')")

          "SELECT 'v #{i} ' || coalesce((SELECT string_agg(r, ',' ORDER BY r) " <>
            "FROM (SELECT #{enc} FROM (#{sql}) q(#{cols})) s(r)), '')"
        end)

    gens = "SELECT 'g 0 ' || (SELECT string_agg(t || ':' || n, ',' ORDER BY t) FROM subq_gen)"

    query = Enum.join(branches ++ [gens], "\nUNION ALL\n")

    Psql.run(db.session, ["DEALLOCATE ALL;\nPREPARE subq_state AS\n", query, ";\n"])
    %{db | matches: index_by(by_id, matches), views: views}
  end

  # shape id => index of its match query
  defp index_by(shape_sqls, matches) do
    at = matches |> Enum.with_index() |> Map.new()
    for {id, sql} <- shape_sqls, do: {id, Map.fetch!(at, sql)}
  end

  defp match_sql(shape) do
    {_, table} = shape.table
    "SELECT id FROM #{table} WHERE #{own_where(shape)}"
  end

  defp plain(shape) do
    {_, table} = shape.table
    {{:plain, shape.id}, "SELECT id FROM #{table} WHERE #{shape.where}"}
  end

  # The shape's WHERE with each subquery it has its own view of (a stale snapshot) replaced
  # by that view: PostgreSQL's result plus the diff while the table's truncate count is the
  # one it was added at, only the values counted above 0 (a NULL too: `GROUP BY` keeps one
  # NULL group). Composite rows with a NULL are left out: such a subquery is positive (plan
  # §2.3), where a NULL row turns FALSE into NULL, which never changes whether the WHERE is
  # TRUE.
  defp own_where(shape) do
    Enum.reduce(shape.positions, shape.where, fn
      %{stale: %{diff: diff, gen: gen}} = p, where ->
        {_, name} = p.table
        cs = Enum.map_join(1..p.arity, ", ", &"c#{&1}")
        not_null = Enum.map_join(1..p.arity, " AND ", &"c#{&1} IS NOT NULL")
        rows = if p.arity == 1, do: diff, else: Map.delete(diff, nil)
        {values, counts} = Enum.unzip(rows)

        columns =
          for {type, i} <- Enum.with_index(p.types) do
            column = Enum.map(values, &if(p.arity == 1, do: &1, else: &1 && Enum.at(&1, i)))
            "ARRAY[#{Enum.map_join(column, ", ", &literal/1)}]::#{type}[]"
          end

        own =
          "(SELECT #{cs} FROM (SELECT #{cs}, sum(n) AS n FROM (" <>
            "SELECT *, 1 FROM (#{p.view}) q(#{cs})" <>
            if(p.arity > 1, do: " WHERE #{not_null}", else: "") <>
            " UNION ALL SELECT * FROM unnest(#{Enum.join(columns, ", ")}, " <>
            "ARRAY[#{Enum.join(counts, ", ")}]::int8[]) " <>
            "WHERE (SELECT n FROM subq_gen WHERE t = '#{name}') = #{gen}" <>
            ") u(#{cs}, n) GROUP BY #{cs}) g WHERE n > 0)"

        unless String.contains?(where, "(#{p.view})"),
          do:
            raise("#{describe(shape)}: subquery #{p.position} is not `(#{p.view})` in its WHERE")

        String.replace(where, "(#{p.view})", own, global: false)

      _p, where ->
        where
    end)
  end

  @doc "PostgreSQL's state now (outside a transaction)."
  @spec state(map()) :: state()
  def state(db), do: db.session |> Psql.run("EXECUTE subq_state;") |> parse_state(db)

  @doc """
  What `subquery_values` takes for `shape` now: per position, its result rows (text or nil;
  a list per row when composite) or its link rows (lists), duplicates included.
  """
  @spec seeds(map(), map()) :: [list()]
  def seeds(db, shape) do
    sql =
      for p <- shape.positions do
        {seed_sql, kind} = p.seed
        arity = if kind == :link, do: p.arity + 1, else: p.arity
        cols = Enum.map_join(1..arity, ", ", &"c#{&1}")
        enc = Enum.map_join(1..arity, " || E'\\t' || ", &"coalesce(c#{&1}::text, '\\N')")

        "SELECT 's' || E'\\t' || #{p.position} || E'\\t' || #{enc} FROM (#{seed_sql}) q(#{cols});\n"
      end

    rows =
      db.session
      |> Psql.run(sql)
      |> Enum.map(fn line ->
        ["s", pos | fields] = String.split(line, "\t")
        {String.to_integer(pos), Enum.map(fields, &null/1)}
      end)
      |> Enum.group_by(&elem(&1, 0), &elem(&1, 1))

    for p <- shape.positions do
      rows = Map.get(rows, p.position, [])
      if p.arity == 1 and elem(p.seed, 1) == :rows, do: Enum.map(rows, &hd/1), else: rows
    end
  end

  @doc """
  `shape` added now with the snapshot of an earlier state `past` (`age` transactions old):
  `{shape, seeds}`, the shape's top-level positions carrying `stale: %{diff, gen}` (the
  snapshot minus the result `now`, nonzero counts only, and the truncate count of the
  subquery's table now) and `snapshot_age: age`; the seeds are `past`'s result rows (a row
  with a NULL as all NULLs: the router counts it a NULL row either way). `nil` when the
  snapshot equals the result now, or when the shape has nested subqueries (their seeds are
  link rows, which the states do not hold). Every view must be in both states.
  """
  @spec stale(map(), state(), state(), pos_integer()) :: {map(), [list()]} | nil
  def stale(shape, past, now, age) do
    if Enum.any?(shape.positions, & &1.parent) do
      nil
    else
      diffs = for p <- shape.positions, do: minus(past.views[p.view], now.views[p.view])

      positions =
        for {p, diff} <- Enum.zip(shape.positions, diffs) do
          if diff == %{}, do: p, else: Map.put(p, :stale, %{diff: diff, gen: now.gens[p.table]})
        end

      seeds =
        for p <- shape.positions do
          for {value, n} <- Enum.sort(past.views[p.view]), _ <- 1..n do
            if value == nil and p.arity > 1, do: List.duplicate(nil, p.arity), else: value
          end
        end

      if Enum.all?(diffs, &(&1 == %{})),
        do: nil,
        else: {%{shape | positions: positions} |> Map.put(:snapshot_age, age), seeds}
    end
  end

  # a - b as a ℤ-multiset (nonzero counts)
  defp minus(a, b) do
    Map.merge(a, Map.new(b, fn {v, n} -> {v, -n} end), fn _v, x, y -> x + y end)
    |> Map.reject(fn {_v, n} -> n == 0 end)
  end

  @doc """
  Runs one random transaction of 1–8 statements, each changing one row (insert, update or
  delete by id). Option `truncate: table` makes one of them a `TRUNCATE` of that table (the
  caller decides how rarely). Returns `{steps, mirror}`: per statement `%{change, before,
  after, rows}` (states before and after it, the rows after it), and the rows after the
  transaction, checked against PostgreSQL's.
  """
  @spec transaction(map(), mirror(), keyword()) :: {[map()], mirror()}
  def transaction(db, mirror, opts \\ []) do
    opts = Keyword.validate!(opts, truncate: nil)
    ids = Map.new(mirror, fn {t, rows} -> {t, MapSet.new(Map.keys(rows))} end)
    n = Enum.random(1..8)
    at = if opts[:truncate], do: Enum.random(1..n)

    {statements, _} =
      Enum.map_reduce(1..n, ids, fn
        ^at, ids -> {{:truncate, opts[:truncate]}, Map.put(ids, opts[:truncate], MapSet.new())}
        _, ids -> statement(ids)
      end)

    sql = [
      "BEGIN;\nEXECUTE subq_state;\n",
      for(s <- statements, do: ["\\echo @@\n", statement_sql(s), "EXECUTE subq_state;\n"]),
      "COMMIT;\n\\echo @@\n",
      for(
        {{_, name} = t, _} <- @tables,
        do: "SELECT '#{name}' || E'\\t' || #{enc("t", t)} FROM #{name} t;\n"
      )
    ]

    [first | groups] = db.session |> Psql.run(sql) |> chunk("@@")
    {groups, [dump]} = Enum.split(groups, -1)

    {steps, {mirror, _}} =
      Enum.zip(statements, groups)
      |> Enum.map_reduce({mirror, parse_state(first, db)}, fn {stmt, lines}, {mirror, before} ->
        {change, state_lines} = statement_result(stmt, lines)
        after_ = parse_state(state_lines, db)
        mirror = apply_change(mirror, change)
        {%{change: change, before: before, after: after_, rows: mirror}, {mirror, after_}}
      end)

    check_dump!(mirror, dump)
    {steps, mirror}
  end

  defp chunk(lines, marker) do
    lines
    |> Enum.chunk_while(
      [],
      fn
        ^marker, acc -> {:cont, Enum.reverse(acc), []}
        line, acc -> {:cont, [line | acc]}
      end,
      &{:cont, Enum.reverse(&1), []}
    )
  end

  defp statement_result({:truncate, table}, lines), do: {{:truncate, table}, lines}

  defp statement_result(stmt, [line | state]) do
    {parse_change(line, elem(stmt, 1)), state}
  end

  defp parse_state(lines, db) do
    {ms, vs, gens} =
      Enum.reduce(lines, {%{}, %{}, %{}}, fn line, {ms, vs, gens} ->
        case String.split(line, " ", parts: 3) do
          ["m", i, csv] -> {Map.put(ms, String.to_integer(i), ids(csv)), vs, gens}
          ["v", i, csv] -> {ms, Map.put(vs, String.to_integer(i), multiset(csv)), gens}
          ["g", "0", csv] -> {ms, vs, gens(csv)}
        end
      end)

    matches = for {id, i} <- db.matches, into: %{}, do: {id, Map.fetch!(ms, i)}

    views =
      for {{sql, _}, i} <- Enum.with_index(db.views), into: %{}, do: {sql, Map.fetch!(vs, i)}

    %{matches: matches, views: views, gens: gens}
  end

  defp gens(csv) do
    for pair <- String.split(csv, ","), into: %{} do
      [name, n] = String.split(pair, ":")
      {{"public", name}, String.to_integer(n)}
    end
  end

  defp ids(""), do: MapSet.new()
  defp ids(csv), do: csv |> String.split(",") |> Enum.map(&String.to_integer/1) |> MapSet.new()

  defp multiset(""), do: %{}

  defp multiset(csv) do
    csv
    |> String.split(",")
    |> Enum.map(fn row ->
      values = row |> String.split(":") |> Enum.map(&if(&1 == "~", do: nil, else: &1))

      cond do
        Enum.any?(values, &is_nil/1) -> nil
        match?([_], values) -> hd(values)
        true -> values
      end
    end)
    |> Enum.frequencies()
  end

  defp check_dump!(mirror, lines) do
    by_name = Map.new(@tables, fn {{_, name} = t, _} -> {name, t} end)
    empty = Map.new(@tables, fn {t, _} -> {t, %{}} end)

    dumped =
      Enum.reduce(lines, empty, fn line, acc ->
        [name | fields] = String.split(line, "\t")
        table = Map.fetch!(by_name, name)
        put_row(acc, table, record(table, fields))
      end)

    unless dumped == mirror,
      do: raise("the row mirror differs from PostgreSQL's tables: #{inspect({mirror, dumped})}")
  end

  ## Statements

  # A random statement over the current ids (table => MapSet), and the ids after it.
  defp statement(ids) do
    table = pick([{@issues, 6}, {@projects, 4}, {@comments, 4}, {@orgs, 2}])
    present = ids[table]
    free = Enum.reject(@ids[table], &MapSet.member?(present, &1))
    size = MapSet.size(present)
    r = :rand.uniform()

    cond do
      free != [] and (size == 0 or r < if(size < @target[table], do: 0.55, else: 0.25)) ->
        id = Enum.random(free)
        {{:insert, table, id, random_row(table)}, Map.update!(ids, table, &MapSet.put(&1, id))}

      size == 0 ->
        # every id taken and none present cannot happen (ranges are not empty)
        raise "no statement possible"

      r < 0.45 ->
        id = Enum.random(present)
        {{:delete, table, id}, Map.update!(ids, table, &MapSet.delete(&1, id))}

      true ->
        id = Enum.random(present)
        row = random_row(table)
        cols = row |> Map.keys() |> Enum.take_random(Enum.random(1..2))
        {{:update, table, id, Map.take(row, cols)}, ids}
    end
  end

  # A row's values (all but id): Elixir terms, nil for NULL.
  defp random_row(@comments) do
    %{
      "issue_id" => maybe(:rand.uniform(45), 0.15),
      "author_id" => maybe(:rand.uniform(5), 0.15),
      "score" => maybe(:rand.uniform(3), 0.15)
    }
  end

  defp random_row(@orgs),
    do: %{"name" => maybe(Enum.random(@names), 0.15), "active" => maybe(bool(), 0.15)}

  defp random_row(@projects) do
    %{
      "org_id" => maybe(:rand.uniform(9), 0.15),
      "owner_id" => maybe(:rand.uniform(5), 0.15),
      "archived" => maybe(bool(), 0.15)
    }
  end

  defp random_row(@issues) do
    %{
      "project_id" => maybe(:rand.uniform(19), 0.15),
      "assignee_id" => maybe(:rand.uniform(5), 0.15),
      "parent_id" => maybe(:rand.uniform(46), 0.3),
      "tags" => maybe(for(_ <- 1..Enum.random(0..3)//1, do: maybe(:rand.uniform(4), 0.1)), 0.15)
    }
  end

  defp maybe(value, p_null), do: if(:rand.uniform() < p_null, do: nil, else: value)
  defp bool, do: :rand.uniform(2) == 1

  defp statement_sql({:insert, {_, name} = table, id, row}) do
    cols = ["id" | Map.keys(row)]
    values = [id | Map.values(row)]

    "INSERT INTO #{name} AS t (#{Enum.join(cols, ", ")}) VALUES " <>
      "(#{Enum.map_join(values, ", ", &literal/1)}) RETURNING 'i' || E'\\t' || #{enc("t", table)};\n"
  end

  defp statement_sql({:update, {_, name} = table, id, set}) do
    sets = Enum.map_join(set, ", ", fn {c, v} -> "#{c} = #{literal(v)}" end)

    "UPDATE #{name} AS t SET #{sets} FROM (SELECT * FROM #{name} WHERE id = #{id}) AS o " <>
      "WHERE t.id = o.id RETURNING 'u' || E'\\t' || #{enc("o", table)} || E'\\t' || " <>
      "#{enc("t", table)};\n"
  end

  defp statement_sql({:delete, {_, name} = table, id}),
    do:
      "DELETE FROM #{name} AS t WHERE id = #{id} RETURNING 'd' || E'\\t' || #{enc("t", table)};\n"

  defp statement_sql({:truncate, {_, name}}),
    do: "TRUNCATE #{name};\nUPDATE subq_gen SET n = n + 1 WHERE t = '#{name}';\n"

  defp literal(nil), do: "NULL"
  defp literal(v) when is_integer(v), do: Integer.to_string(v)
  defp literal(v) when is_boolean(v), do: to_string(v)
  defp literal(v) when is_binary(v), do: Psql.literal(v)

  defp literal(list) when is_list(list),
    do: "'{" <> Enum.map_join(list, ",", &if(&1, do: &1, else: "NULL")) <> "}'::int4[]"

  # a row of `alias` as its columns' text, tab-separated, `\N` for NULL
  defp enc(alias, table) do
    Enum.map_join(@columns[table], " || E'\\t' || ", fn {c, _} ->
      "coalesce(#{alias}.#{c}::text, '\\N')"
    end)
  end

  defp parse_change(line, table) do
    n = length(@columns[table])

    case String.split(line, "\t") do
      ["i" | fields] ->
        {:insert, table, record(table, fields)}

      ["d" | fields] ->
        {:delete, table, record(table, fields)}

      ["u" | fields] ->
        {old, new} = Enum.split(fields, n)
        {:update, table, record(table, old), record(table, new)}
    end
  end

  defp record(table, fields) do
    cols = Enum.map(@columns[table], &elem(&1, 0))
    unless length(fields) == length(cols), do: raise("bad row #{inspect(fields)}")
    cols |> Enum.zip(Enum.map(fields, &null/1)) |> Map.new()
  end

  defp null("\\N"), do: nil
  defp null(text), do: text

  defp apply_change(mirror, {:insert, t, rec}), do: put_row(mirror, t, rec)
  defp apply_change(mirror, {:update, t, _old, new}), do: put_row(mirror, t, new)

  defp apply_change(mirror, {:delete, t, rec}),
    do: Map.update!(mirror, t, &Map.delete(&1, String.to_integer(rec["id"])))

  defp apply_change(mirror, {:truncate, t}), do: Map.put(mirror, t, %{})

  defp put_row(mirror, t, rec),
    do: Map.update!(mirror, t, &Map.put(&1, String.to_integer(rec["id"]), rec))

  defp pg_type(:int8), do: "int8"
  defp pg_type(:text), do: "text"
  defp pg_type(:bool), do: "bool"
  defp pg_type(:int4), do: "int4"
  defp pg_type({:array, :int4}), do: "int4[]"
end
