defmodule LsmIndex.Demo.Shapes do
  @moduledoc """
  The demo's shapes: `n` client subscriptions over `users`, `projects` and `todos`, made
  from a seed (a restarted driver makes the same ones). Not public API.

  The mix (by weight): on `todos` 85% — `user_id = $1` (34), with `status <> 'done'` (12),
  with a month's `due_at` range (5), with `estimate > 5.5` (3); `project_id IN (…)` (10), with
  `status IN ('open', 'blocked')` (6); `project_id = $1 AND priority >= 3` (8), `AND
  lower(title) LIKE '%bug%'` (4); `user_id = $1 OR project_id = $2` (3) — on `projects` 8%:
  `owner_id = $1` (5), `AND NOT archived` (3) — on `users` 7%: `id = $1` (3), `lower(email)
  = $1` (2), `active AND id IN (…)` (2). Plus a few without any equality (3 to 11: one per
  10,000 shapes), which the router evaluates on every change of their table: a title prefix,
  `length(notes) > 5000`, a week of `due_at`, numeric arithmetic, `length(title)`, `IS
  NULL`, ... Parameters name users and projects up to 10% beyond the seeded ones (rows the
  workload inserts later).

  Columns beyond the mix's: after its kind is drawn, a todos shape draws once more (1..100)
  and may become a shape on `notes` (1..5: `user_id = $1 AND notes LIKE 'urgent%'` or
  `project_id = $1 AND notes IS NOT NULL`) — long notes are TOASTed, and an update that
  leaves them alone sends them as unchanged TOAST (`LsmIndex.Demo.Transactions`): these
  shapes fail if the decoder does not take the value from the old row — or, once the
  column `tag` exists (added while streaming: `one/5`), a shape on `tag` (6..25: `user_id =
  $1 AND tag = 'red'` and the like, or `tag = $1 AND project_id = $2`). `generate/4` knows
  `notes` (the column is created with the table); `one/5` knows the columns it is given, and
  `one/4` none of them (its shapes are those it made before either column).
  """

  alias LsmIndex.Demo.Psql

  @typedoc "A shape: global id (also its id in its table's router), table, WHERE, `$n` values."
  @type t :: %{id: non_neg_integer(), table: String.t(), where: String.t(), params: [String.t()]}

  @unindexable [
    {"todos", "lower(title) LIKE 'fix%'"},
    {"todos", "priority >= 5 AND NOT done"},
    {"todos", "length(notes) > 5000"},
    {"todos", "due_at >= '2024-06-01' AND due_at < '2024-06-08'"},
    {"todos", "estimate * 2 > 30"},
    {"todos", "external_id IS NULL AND priority > 3"},
    {"users", "NOT active AND created_at >= '2024-01-01'"},
    {"todos", "length(title) > 40"},
    {"projects", "budget > 90000"},
    {"todos", "coalesce(estimate, 0) = 0"},
    {"todos", "title LIKE '%urgent%'"}
  ]

  @kinds [
    {34, :user},
    {12, :user_open},
    {5, :user_due},
    {3, :user_estimate},
    {10, :projects_in},
    {6, :projects_in_status},
    {8, :project_priority},
    {4, :project_bug},
    {3, :user_or_project},
    {5, :owner},
    {3, :owner_active},
    {3, :user_id},
    {2, :email},
    {2, :users_in}
  ]

  @doc """
  `n` shapes from `seed`; `users` and `projects`: how many the workload seeds (parameters
  range 10% beyond).
  """
  @spec generate(pos_integer(), integer(), pos_integer(), pos_integer()) :: [t()]
  def generate(n, seed, users, projects) do
    rand = :rand.seed_s(:exsss, {seed, 15, 2026})
    scanned = n |> div(10_000) |> max(3) |> min(length(@unindexable)) |> min(n)
    ranges = {div(users * 11, 10), div(projects * 11, 10)}

    first =
      for {{table, where}, id} <- Enum.with_index(Enum.take(@unindexable, scanned)),
          do: %{id: id, table: table, where: where, params: []}

    {rest, _rand} =
      Enum.map_reduce(scanned..(n - 1)//1, rand, fn id, rand ->
        {kind, rand} = kind(rand)
        {shape, rand} = shape(kind, ranges, rand)
        {shape, rand} = optional(shape, ["notes"], ranges, rand)
        {Map.put(shape, :id, id), rand}
      end)

    first ++ rest
  end

  @doc """
  Shape `id` alone, from `seed` and the id (the same on every run): a shape added while the
  stream runs, of the same mix as `generate/4`'s (the shapes without an equality aside) but
  on no column beyond the mix's: `one(id, seed, users, projects, [])`.
  """
  @spec one(non_neg_integer(), integer(), pos_integer(), pos_integer()) :: t()
  def one(id, seed, users, projects), do: one(id, seed, users, projects, [])

  @doc """
  Shape `id` alone, as `one/4`, when the routers know `known_columns` of `todos` (names):
  with `"notes"` ~5% of the todos shapes are on `notes`, with `"tag"` ~20% are on `tag`
  (a column added while streaming). Without either it is `one/4`'s shape; with them the
  other shapes are still `one/4`'s.
  """
  @spec one(non_neg_integer(), integer(), pos_integer(), pos_integer(), [String.t()]) :: t()
  def one(id, seed, users, projects, known_columns) do
    rand = :rand.seed_s(:exsss, {seed, id, 2027})
    ranges = {div(users * 11, 10), div(projects * 11, 10)}
    {kind, rand} = kind(rand)
    {shape, rand} = shape(kind, ranges, rand)
    {shape, _rand} = optional(shape, known_columns, ranges, rand)
    Map.put(shape, :id, id)
  end

  defp kind(rand) do
    total = @kinds |> Enum.map(&elem(&1, 0)) |> Enum.sum()
    {x, rand} = :rand.uniform_s(total, rand)
    {pick(@kinds, x), rand}
  end

  defp pick([{w, kind} | _], x) when x <= w, do: kind
  defp pick([{w, _} | rest], x), do: pick(rest, x - w)

  defp shape(kind, {users, projects}, rand) do
    {u, rand} = :rand.uniform_s(users, rand)
    {p, rand} = :rand.uniform_s(projects, rand)
    {k, rand} = :rand.uniform_s(3, rand)
    {ids, rand} = Enum.map_reduce(1..k, rand, fn _, r -> :rand.uniform_s(projects, r) end)
    {month, rand} = :rand.uniform_s(12, rand)
    list = ids |> Enum.uniq() |> Enum.join(", ")
    other_user = div(u, 2) + 1
    {u, p} = {Integer.to_string(u), Integer.to_string(p)}

    shape =
      case kind do
        :user ->
          {"todos", "user_id = $1", [u]}

        :user_open ->
          {"todos", "user_id = $1 AND status <> 'done'", [u]}

        :user_due ->
          from = Date.new!(2024, month, 1)
          to = if month == 12, do: ~D[2025-01-01], else: Date.new!(2024, month + 1, 1)
          {"todos", "user_id = $1 AND due_at >= '#{from}' AND due_at < '#{to}'", [u]}

        :user_estimate ->
          {"todos", "user_id = $1 AND estimate > 5.5", [u]}

        :projects_in ->
          {"todos", "project_id IN (#{list})", []}

        :projects_in_status ->
          {"todos", "project_id IN (#{list}) AND status IN ('open', 'blocked')", []}

        :project_priority ->
          {"todos", "project_id = $1 AND priority >= 3", [p]}

        :project_bug ->
          {"todos", "project_id = $1 AND lower(title) LIKE '%bug%'", [p]}

        :user_or_project ->
          {"todos", "user_id = $1 OR project_id = $2", [u, p]}

        :owner ->
          {"projects", "owner_id = $1", [u]}

        :owner_active ->
          {"projects", "owner_id = $1 AND NOT archived", [u]}

        :user_id ->
          {"users", "id = $1", [u]}

        :email ->
          {"users", "lower(email) = $1", ["user#{u}@example.com"]}

        :users_in ->
          {"users", "active AND id IN (#{u}, #{p}, #{other_user})", []}
      end

    {table, where, params} = shape
    {%{table: table, where: where, params: params}, rand}
  end

  # a todos shape may become one on a column beyond the mix's (one draw more, and only when
  # one is known: without, the draws, and so the shapes, are those made before the columns)
  defp optional(%{table: "todos"} = shape, known, {users, projects}, rand) do
    notes? = "notes" in known
    tag? = "tag" in known

    if notes? or tag? do
      {x, rand} = :rand.uniform_s(100, rand)
      {u, rand} = :rand.uniform_s(users, rand)
      {p, rand} = :rand.uniform_s(projects, rand)
      {c, rand} = :rand.uniform_s(3, rand)
      {u, p} = {Integer.to_string(u), Integer.to_string(p)}
      color = Enum.at(["red", "green", "blue"], c - 1)

      shape =
        cond do
          notes? and x <= 3 ->
            %{shape | where: "user_id = $1 AND notes LIKE 'urgent%'", params: [u]}

          notes? and x <= 5 ->
            %{shape | where: "project_id = $1 AND notes IS NOT NULL", params: [p]}

          tag? and x in 6..15 ->
            %{shape | where: "user_id = $1 AND tag = '#{color}'", params: [u]}

          tag? and x in 16..25 ->
            %{shape | where: "tag = $1 AND project_id = $2", params: [color, p]}

          true ->
            shape
        end

      {shape, rand}
    else
      {shape, rand}
    end
  end

  defp optional(shape, _known, _ranges, rand), do: {shape, rand}

  @doc """
  The shape's WHERE for PostgreSQL: each `$n` replaced by its value as an untyped string
  literal (typed by where it is used, as the router types a parameter).
  """
  @spec sql(t()) :: String.t()
  def sql(%{where: where, params: params}) do
    values = List.to_tuple(params)

    Regex.replace(~r/\$(\d+)/, where, fn _, n ->
      Psql.literal(elem(values, String.to_integer(n) - 1))
    end)
  end
end
