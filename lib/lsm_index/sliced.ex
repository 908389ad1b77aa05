defmodule LsmIndex.Sliced do
  @moduledoc false
  # The caller's side of a NIF that works through a list in time slices (the routers'
  # `*_route_many`): each call handles what fits in ~0.5 ms and hands back
  # `{reversed_results, rest}`; `:dirty` sends the whole list to the dirty twin. The results
  # of every slice, in order, or `on_error.(reply, done)` (`done`: how many items earlier
  # slices handled) for any other reply.

  @doc "Runs `call` (and `dirty` when it answers `:dirty`) over `items` until none are left."
  @spec run(
          ([term()] -> term()),
          ([term()] -> term()),
          [term()],
          (term(), non_neg_integer() ->
             no_return())
        ) :: [term()]
  def run(call, dirty, items, on_error), do: run(call, dirty, items, on_error, [], 0)

  defp run(call, dirty, items, on_error, acc, done) do
    reply =
      case call.(items) do
        :dirty -> dirty.(items)
        reply -> reply
      end

    case reply do
      {reversed, []} when is_list(reversed) ->
        :lists.reverse(reversed ++ acc)

      {reversed, rest} when is_list(reversed) and is_list(rest) ->
        run(call, dirty, rest, on_error, reversed ++ acc, done + length(reversed))

      {reversed, tail} when is_list(reversed) ->
        raise ArgumentError, "changes must be a proper list, got a tail of #{inspect(tail)}"

      other ->
        on_error.(other, done)
    end
  end
end
