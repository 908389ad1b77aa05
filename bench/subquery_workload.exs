defmodule LsmIndex.Bench.SubqueryWorkload do
  @moduledoc """
  The tables, shapes and values of `mix bench --only subquery` (bench/subquery.exs and the
  memory readings it runs in VMs of their own, bench/subquery_memory.exs).

  Two tables: `memberships(user_id int8, project_id T)` (the inner table) and
  `issues(id int8, project_id T, status text, priority int2, title text)` (the outer one),
  `T` being `int8` or `uuid`. A shape is a template over the subquery `project_id IN
  (SELECT project_id FROM memberships WHERE user_id = $1)`: shapes with the same `$1` share
  one view.
  """

  alias LsmIndex.ShapeRouter

  @memberships {"public", "memberships"}
  @issues {"public", "issues"}
  @subquery "project_id IN (SELECT project_id FROM memberships WHERE user_id = $1)"
  # ten templates over one subquery: a user's ten shapes share its view. `:view`: no
  # conjunct the router would index before the view; `:equality`: two of them carry an
  # equality on `status`, which the router's plan indexes before a view (plan §4.6)
  @templates [
    "",
    " AND status <> 'done'",
    " AND priority >= 3",
    " AND status LIKE 'o%'",
    " AND priority < 2",
    " AND status <> 'archived' AND priority > 0",
    " AND title LIKE 'bug%'",
    " AND priority BETWEEN 1 AND 3",
    " AND title IS NOT NULL",
    " AND NOT (status = 'archived')"
  ]
  @equality_templates %{3 => " AND status = 'open'", 5 => " AND status IN ('open', 'late')"}
  @statuses ["open", "late", "done", "archived"]
  @seed {20_261_207, 23, 7}

  def memberships, do: @memberships
  def issues, do: @issues

  @doc """
  The shape SQL of template `t` (0..9) of `set` (`:view` or `:equality`, see above);
  template 0 is the bare subquery.
  """
  def sql(t, set \\ :view)
  def sql(t, :view), do: @subquery <> Enum.at(@templates, t)
  def sql(t, :equality), do: @subquery <> Map.get(@equality_templates, t, Enum.at(@templates, t))
  def templates, do: length(@templates)
  @doc "The templates `:equality` changes, as `{t, sql}`."
  def equality_templates, do: Enum.sort(@equality_templates)

  @doc "The columns of both tables, project ids of `type` (`:int8` or `:uuid`)."
  def tables(type) do
    %{
      @memberships => [{"user_id", :int8}, {"project_id", type}],
      @issues => [
        {"id", :int8},
        {"project_id", type},
        {"status", :text},
        {"priority", :int2},
        {"title", :text}
      ]
    }
  end

  @doc "A router over both tables (`index`: `LsmIndex` options, shared by its indexes)."
  def router(type, index \\ []) do
    {:ok, r} = ShapeRouter.new("bench", tables(type), index: index)
    r
  end

  @doc """
  Adds shape `id` of template `t` (of `set`) for `user`, seeded with `values` (or
  `:current`).
  """
  def add!(r, id, t, user, values, set \\ :view) do
    :ok =
      ShapeRouter.add_shape(r, id, sql(t, set),
        table: @issues,
        params: [Integer.to_string(user)],
        subquery_values: [values]
      )
  end

  @doc """
  Adds shape `id` of template `t` for a user in `projects` without a subquery: the
  projects inlined as an IN list (`project_id IN (3, 9, …) AND …`), the baseline of a
  view's cost.
  """
  def add_inlist!(r, id, t, projects) do
    list = Enum.map_join(projects, ", ", &Integer.to_string/1)
    where = "project_id IN (#{list})" <> Enum.at(@templates, t)
    :ok = ShapeRouter.add_shape(r, id, where, table: @issues)
  end

  @doc "Project `i` as PostgreSQL text: the integer, or a uuid made from it."
  def text(i, :int8), do: Integer.to_string(i)

  def text(i, :uuid) do
    <<a::binary-8, b::binary-4, c::binary-4, d::binary-4, e::binary-12>> =
      Base.encode16(<<uuid(i)::128>>, case: :lower)

    Enum.join([a, b, c, d, e], "-")
  end

  @doc "Project `i` as the host's ETS holds it: the integer, or the uuid's 16 bytes."
  def ets_value(i, :int8), do: i
  def ets_value(i, :uuid), do: <<uuid(i)::128>>

  # a bijection of 128-bit integers (odd multiplier), so distinct i give distinct uuids
  defp uuid(i), do: rem(i * 0x9E3779B97F4A7C15F39CC0605CEDC835 + 1, Bitwise.bsl(1, 128))

  @doc """
  Each user's `per` distinct projects out of `1..domain`, users `1..users` in order: a
  lazy stream of `{user, [project]}`, the same on every call (its own seeded generator,
  started when the stream is).
  """
  def member_projects(users, per, domain) do
    Stream.transform(
      1..users,
      fn -> :rand.seed_s(:exsss, @seed) end,
      fn u, st ->
        {projects, st} = distinct(per, domain, st, MapSet.new())
        {[{u, projects}], st}
      end,
      fn _ -> :ok end
    )
  end

  defp distinct(per, domain, st, acc) do
    if MapSet.size(acc) == per do
      {MapSet.to_list(acc), st}
    else
      {p, st} = :rand.uniform_s(domain, st)
      distinct(per, domain, st, MapSet.put(acc, p))
    end
  end

  @doc "A random issues row with a project of `1..domain` (`st`: a `:rand` state)."
  def issue(id, domain, type, st) do
    {p, st} = :rand.uniform_s(domain, st)
    {s, st} = :rand.uniform_s(length(@statuses), st)
    {pri, st} = :rand.uniform_s(5, st)
    {bug, st} = :rand.uniform_s(4, st)

    row = %{
      "id" => Integer.to_string(id),
      "project_id" => text(p, type),
      "status" => Enum.at(@statuses, s - 1),
      "priority" => Integer.to_string(pri - 1),
      "title" => if(bug == 1, do: "bug #{id}", else: "task #{id}")
    }

    {row, st}
  end

  def rand_state, do: :rand.seed_s(:exsss, @seed)

  @doc """
  `ShapeRouter.view_metrics/1` with atom keys and the view index's stats unwrapped (as of
  this writing it returns string keys and `view_index: {:ok, stats}`, not the map its doc
  promises; this takes either form).
  """
  def view_metrics(r) do
    m = Map.new(ShapeRouter.view_metrics(r), fn {k, v} -> {to_atom(k), v} end)

    case m.view_index do
      {:ok, stats} -> %{m | view_index: stats}
      stats -> m |> Map.put(:view_index, stats)
    end
  end

  defp to_atom(k) when is_atom(k), do: k
  defp to_atom(k) when is_binary(k), do: String.to_atom(k)

  @doc "The view index's own bytes (`LsmIndex.stats/1`: segments, MPH, overlays, counts)."
  def index_bytes(%{view_index: st}),
    do: st.segment_bytes + st.mph_heap_bytes + st.overlay_bytes + st.handle_count_bytes
end
