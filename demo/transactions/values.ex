defmodule LsmIndex.Demo.Transactions.Values do
  @moduledoc """
  The values `LsmIndex.Demo.Transactions` writes, as SQL literals drawn from its random
  state: a fresh row of each table, and the titles, notes, emails, timestamps, budgets,
  estimates and tags its updates set. Every function takes the `:rand` state and returns
  it advanced, so the transactions stay deterministic from the workload's seed. Not
  public API.
  """

  alias LsmIndex.Demo.{Psql, Schema}

  @words ~w(fix bug update review deploy write test plan design refactor migrate ship
            docs api login cache index query billing invoice report email search)
  @odd_titles [
    "O'Brien's follow-up",
    "naïve café résumé",
    "Fix: \"quoted\" title",
    "path C:\\temp\\x",
    "ΣΑΣ ελληνικά",
    "urgent: 100% done_now",
    "emoji 🚀 launch"
  ]

  @note_words ~w(urgent later idea maybe blocked)
  @fillers ["filler ", "lorem ipsum ", "café crème "]
  @tags ["'red'", "'green'", "'blue'", "NULL"]

  @doc """
  A fresh row of `table` with id `id` as `[{column, SQL literal}]`: `next` (the next id
  per table) bounds the users and projects it refers to; `tag?`: whether `todos.tag`
  exists.
  """
  @spec row(String.t(), pos_integer(), map(), boolean(), :rand.state()) ::
          {[{String.t(), String.t()}], :rand.state()}
  def row("users", id, _next, _tag?, r) do
    {email, r} = email(id, r)
    {x, r} = :rand.uniform_s(100, r)
    {created, r} = timestamp(r)
    name = Enum.at(@words, rem(id, length(@words))) <> " #{id}"

    {[
       {"id", "#{id}"},
       {"email", email},
       {"name", Psql.literal(name)},
       {"active", bool(x <= 85)},
       {"created_at", created}
     ], r}
  end

  def row("projects", id, next, _tag?, r) do
    {owner, r} = :rand.uniform_s(max(next["users"] - 1, 1), r)
    {x, r} = :rand.uniform_s(100, r)
    {budget, r} = budget(r)
    {created, r} = timestamp(r)

    {[
       {"id", "#{id}"},
       {"owner_id", "#{owner}"},
       {"name", Psql.literal("Project #{id}")},
       {"archived", bool(x <= 10)},
       {"budget", budget},
       {"created_at", created}
     ], r}
  end

  def row("todos", id, next, tag?, r) do
    {project, r} = :rand.uniform_s(max(next["projects"] - 1, 1), r)
    {user, r} = :rand.uniform_s(max(next["users"] - 1, 1), r)
    {title, r} = title(r)
    {status, r} = status(r)
    {priority, r} = :rand.uniform_s(5, r)
    {estimate, r} = estimate(r)
    {due, r} = due(r)
    {x, r} = :rand.uniform_s(10, r)
    external = if x == 1, do: "NULL", else: "gen_random_uuid()"
    {notes, r} = notes(r)
    {tag, r} = if tag?, do: tag(r), else: {nil, r}

    row = [
      {"id", "#{id}"},
      {"project_id", "#{project}"},
      {"user_id", "#{user}"},
      {"title", title},
      {"status", status},
      {"priority", "#{priority}"},
      {"done", bool(status == "'done'")},
      {"estimate", estimate},
      {"due_at", due},
      {"created_at", "now()"},
      {"external_id", external},
      {"notes", notes}
    ]

    {if(tag, do: row ++ [{"tag", tag}], else: row), r}
  end

  @doc "A todo's `tag`: `red`, `green`, `blue` or NULL."
  @spec tag(:rand.state()) :: {String.t(), :rand.state()}
  def tag(r), do: pick(@tags, r)

  @doc "Notes an update writes: long (stored out of line), short or NULL alike."
  @spec rewritten_notes(:rand.state()) :: {String.t(), :rand.state()}
  def rewritten_notes(r) do
    {x, r} = :rand.uniform_s(3, r)

    case x do
      1 -> long_notes(r)
      2 -> short_notes(r)
      3 -> {"NULL", r}
    end
  end

  @doc "A user's email for `id` (its case varies)."
  @spec email(pos_integer(), :rand.state()) :: {String.t(), :rand.state()}
  def email(id, r) do
    {x, r} = :rand.uniform_s(3, r)
    email = if x == 1, do: "User#{id}@Example.COM", else: "user#{id}@example.com"
    {Psql.literal(email), r}
  end

  @doc "A todo's title: words, sometimes capitalised, or one of the odd titles."
  @spec title(:rand.state()) :: {String.t(), :rand.state()}
  def title(r) do
    {x, r} = :rand.uniform_s(20, r)

    if x == 1 do
      {i, r} = :rand.uniform_s(length(@odd_titles), r)
      {Psql.literal(Enum.at(@odd_titles, i - 1)), r}
    else
      {words, r} =
        Enum.map_reduce(1..(2 + rem(x, 4)), r, fn _, r ->
          {i, r} = :rand.uniform_s(length(@words), r)
          {Enum.at(@words, i - 1), r}
        end)

      title = Enum.join(words, " ")
      title = if rem(x, 3) == 0, do: String.capitalize(title), else: title
      {Psql.literal(title), r}
    end
  end

  defp notes(r) do
    {x, r} = :rand.uniform_s(100, r)

    cond do
      x <= 15 -> long_notes(r)
      x <= 40 -> short_notes(r)
      true -> {"NULL", r}
    end
  end

  # 3,000 to 12,000 characters, out of line; built by the server (`repeat`) from a short SQL
  defp long_notes(r) do
    {word, r} = note_word(r)
    {filler, r} = pick(@fillers, r)
    {chars, r} = :rand.uniform_s(9001, r)
    times = div(2999 + chars, String.length(filler))
    {"#{Psql.literal(word <> " ")} || repeat(#{Psql.literal(filler)}, #{times})", r}
  end

  defp short_notes(r) do
    {word, r} = note_word(r)
    {n, r} = :rand.uniform_s(4, r)
    {words, r} = Enum.map_reduce(1..n, r, fn _, r -> pick(@words, r) end)
    {Psql.literal(word <> ": " <> Enum.join(words, " ")), r}
  end

  # the word a note starts with; one in ten capitalised (`LIKE 'urgent%'` is case-sensitive)
  defp note_word(r) do
    {word, r} = pick(@note_words, r)
    {x, r} = :rand.uniform_s(10, r)
    {if(x == 1, do: String.capitalize(word), else: word), r}
  end

  defp pick(list, r) do
    {i, r} = :rand.uniform_s(length(list), r)
    {Enum.at(list, i - 1), r}
  end

  @doc "One of `LsmIndex.Demo.Schema.statuses/0`, quoted."
  @spec status(:rand.state()) :: {String.t(), :rand.state()}
  def status(r) do
    {i, r} = :rand.uniform_s(length(Schema.statuses()), r)
    {"'#{Enum.at(Schema.statuses(), i - 1)}'", r}
  end

  @doc "A numeric estimate with trailing zeros, `0` or NULL."
  @spec estimate(:rand.state()) :: {String.t(), :rand.state()}
  def estimate(r) do
    {x, r} = :rand.uniform_s(2000, r)

    cond do
      x <= 300 -> {"NULL", r}
      x <= 400 -> {"0", r}
      true -> {"#{div(x, 100)}.#{String.pad_leading("#{rem(x, 100)}", 2, "0")}", r}
    end
  end

  @doc "A numeric budget or NULL."
  @spec budget(:rand.state()) :: {String.t(), :rand.state()}
  def budget(r) do
    {x, r} = :rand.uniform_s(10_000_000, r)
    if x <= 1_000_000, do: {"NULL", r}, else: {"#{div(x, 100)}.#{rem(x, 100)}", r}
  end

  @doc "A due timestamptz or NULL."
  @spec due(:rand.state()) :: {String.t(), :rand.state()}
  def due(r) do
    {x, r} = :rand.uniform_s(10, r)

    if x == 1 do
      {"NULL", r}
    else
      timestamp(r)
    end
  end

  # a 2024 instant written with one of several UTC offsets
  defp timestamp(r) do
    {day, r} = :rand.uniform_s(366, r)
    {minute, r} = :rand.uniform_s(1440, r)
    {o, r} = :rand.uniform_s(4, r)
    date = Date.add(~D[2024-01-01], day - 1)
    time = Time.add(~T[00:00:00], (minute - 1) * 60)
    offset = Enum.at(["+00", "+05:30", "-08", "+02"], o - 1)
    {"'#{date} #{time}#{offset}'", r}
  end

  @doc "A boolean literal."
  @spec bool(boolean()) :: String.t()
  def bool(true), do: "true"
  def bool(false), do: "false"
end
