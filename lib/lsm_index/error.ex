defmodule LsmIndex.Error do
  @moduledoc """
  An operational failure of an index or a router (a damaged file, a locked directory, a WHERE
  clause that does not parse, a failed build), raised by the `!` variants of the functions that
  return `{:ok, value} | {:error, reason}` (`LsmIndex.new!/1`, `LsmIndex.open!/2`,
  `LsmIndex.ShapeRouter.add_shape!/3`, ...) and by the calls that have no error return
  (`LsmIndex.size/1`, `LsmIndex.ShapeRouter.route/2`, ...).

  Caller mistakes (a bad option, a closed index, a value of the wrong type) raise
  `ArgumentError` instead, in every variant.

  ## Fields

    * `:reason` - what the `{:error, reason}` form returns, with a `{kind, text}` pair split in
      two: `kind` here (`:corrupt`, `:checksum_mismatch`, `:io`, `:invalid_config`, ...) and
      `text` in `:message`. Other reasons are kept whole: `:locked`, `:overloaded`,
      `{:invalid_where, byte_offset, text}`.
    * `:message` - a readable sentence.

      iex> e = LsmIndex.Error.exception(reason: {:io, "no space left on device"})
      iex> {e.reason, Exception.message(e)}
      {:io, "no space left on device"}
      iex> Exception.message(LsmIndex.Error.exception(reason: {:invalid_where, 10, "expected a literal"}))
      "invalid WHERE clause at byte 10: expected a literal"
  """

  defexception [:reason, :message]

  @typedoc "An index or router failure."
  @type t :: %__MODULE__{reason: term(), message: String.t()}

  @doc """
  Builds the exception from `reason:` (an error term, see the module doc) and an optional
  `message:`; without one the message is derived from the reason.
  """
  @impl true
  @spec exception(keyword()) :: t()
  def exception(opts) when is_list(opts) do
    case {Keyword.get(opts, :reason), Keyword.get(opts, :message)} do
      {{kind, text}, nil} when is_atom(kind) and is_binary(text) ->
        %__MODULE__{reason: kind, message: text}

      {reason, nil} ->
        %__MODULE__{reason: reason, message: describe(reason)}

      {reason, message} ->
        %__MODULE__{reason: reason, message: message}
    end
  end

  @doc false
  # The value of an `{:ok, value}` (or `:ok`) reply; `{:error, reason}` raises this exception.
  # Every `!` variant goes through it.
  @spec unwrap!(:ok | {:ok, value} | {:error, term()}) :: :ok | value when value: term()
  def unwrap!({:ok, value}), do: value
  def unwrap!(:ok), do: :ok
  def unwrap!({:error, reason}), do: raise(__MODULE__, reason: reason)

  defp describe(:locked),
    do: "the directory is locked: another index or router (in this VM or another) has it open"

  defp describe(:overloaded),
    do: "overloaded: compaction is behind and the lane is full (overload: :error)"

  defp describe({:invalid_where, offset, text}),
    do: "invalid WHERE clause at byte #{offset}: #{text}"

  defp describe(reason), do: "lsm_index failed: #{inspect(reason)}"
end
