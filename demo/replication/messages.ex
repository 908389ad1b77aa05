defmodule LsmIndex.Demo.Replication.Messages do
  @moduledoc """
  The backend messages of `LsmIndex.Demo.Replication`'s connection: the bytes received
  split into whole messages (type, Int32 length counting itself, body) and each decoded —
  CopyData (XLogData, keepalive), ErrorResponse, DataRow, ReadyForQuery and the rest. Pure:
  works on the buffer fields of a `%Replication{}` (`pending`, `have`, `need`), never on
  its socket. Not public API.
  """

  alias LsmIndex.Demo.Replication
  alias LsmIndex.Demo.Replication.Error

  @typedoc "A decoded message outside the stream's CopyData (startup, queries)."
  @type backend ::
          Replication.message()
          | Error.t()
          | {:auth, non_neg_integer(), binary()}
          | {:parameter, binary()}
          | {:backend_key, non_neg_integer(), non_neg_integer()}
          | {:row_description, binary()}
          | {:data_row, [binary() | nil]}
          | :empty_query
          | {:copy_both, binary()}
          | {:copy_out, binary()}
          | {:unknown, byte(), binary()}

  @doc """
  Adds `chunks` (received, newest first) to `conn`'s buffer and takes the complete
  messages out of it, in order; raises an `ErrorResponse` as `Replication.Error`.
  """
  @spec split_chunks(Replication.t(), [iodata()]) :: {[Replication.message()], Replication.t()}
  # While the oldest incomplete message stays incomplete, the chunks are only kept (no
  # joining: a large message read in many pieces is joined once).
  def split_chunks(conn, chunks) do
    pending = chunks ++ conn.pending
    have = conn.have + IO.iodata_length(chunks)

    if have < conn.need do
      {[], %{conn | pending: pending, have: have}}
    else
      {messages, rest} = frames(joined(pending), [])
      {messages, %{conn | pending: tail(rest), have: byte_size(rest), need: need(rest)}}
    end
  end

  @doc """
  The first whole message of `conn`'s buffer (notices skipped), or `nil` when none is
  whole, and the connection without it. Errors are returned, not raised.
  """
  @spec take_one(Replication.t()) :: {backend() | nil, Replication.t()}
  # outside the stream the messages are few and small: one at a time off the buffer
  def take_one(%Replication{pending: pending} = conn) do
    buffer = joined(pending)

    case buffer do
      <<type, len::32, body::binary-size(len - 4), rest::binary>> ->
        message = if type == ?d, do: copy_data(body), else: backend(type, body)
        conn = %{conn | pending: tail(rest), have: byte_size(rest), need: need(rest)}
        if message == :notice, do: take_one(conn), else: {message, conn}

      _ ->
        {nil, %{conn | pending: tail(buffer), have: byte_size(buffer), need: need(buffer)}}
    end
  end

  # pending chunks (newest first) as one binary; a single one as it is, not copied
  defp joined([bin]) when is_binary(bin), do: bin
  defp joined(pending), do: pending |> :lists.reverse() |> IO.iodata_to_binary()

  defp tail(<<>>), do: []
  defp tail(rest), do: [rest]

  # the buffer size at which its first message is whole
  defp need(<<_type, len::32, _::binary>>) when len < 4,
    do: raise(ArgumentError, "a message length of #{len} in the replication stream")

  defp need(<<_type, len::32, _::binary>>), do: len + 1
  defp need(_rest), do: 5

  # Whole messages (type, Int32 length counting itself, body) off the front of `buffer`.
  defp frames(<<?d, len::32, body::binary-size(len - 4), rest::binary>>, acc),
    do: frames(rest, [copy_data(body) | acc])

  defp frames(<<type, len::32, body::binary-size(len - 4), rest::binary>>, acc) do
    case backend(type, body) do
      %Error{} = e -> raise e
      :notice -> frames(rest, acc)
      message -> frames(rest, [message | acc])
    end
  end

  defp frames(rest, acc), do: {:lists.reverse(acc), rest}

  defp copy_data(<<?w, start::64, wal_end::64, time::64-signed, data::binary>>),
    do: {:xlog_data, start, wal_end, time, data}

  defp copy_data(<<?k, wal_end::64, time::64-signed, reply>>),
    do: {:keepalive, wal_end, time, reply == 1}

  defp copy_data(other),
    do: raise(ArgumentError, "unknown CopyData message: #{inspect(other, limit: 40)}")

  # The backend messages outside CopyData the client handles.
  defp backend(?R, <<code::32, rest::binary>>), do: {:auth, code, rest}
  defp backend(?Z, <<status>>), do: {:ready, status}
  defp backend(?E, body), do: error(body)
  defp backend(?N, _body), do: :notice
  defp backend(?S, body), do: {:parameter, body}
  defp backend(?K, <<pid::32, secret::32>>), do: {:backend_key, pid, secret}
  defp backend(?T, body), do: {:row_description, body}
  defp backend(?D, <<_n::16, values::binary>>), do: {:data_row, values(values, [])}
  defp backend(?C, body), do: {:command_complete, cstring(body)}
  defp backend(?I, _body), do: :empty_query
  defp backend(?W, body), do: {:copy_both, body}
  defp backend(?c, _body), do: :copy_done
  defp backend(?H, body), do: {:copy_out, body}
  defp backend(type, body), do: {:unknown, type, body}

  defp values(<<-1::32-signed, rest::binary>>, acc), do: values(rest, [nil | acc])

  defp values(<<len::32, value::binary-size(len), rest::binary>>, acc),
    do: values(rest, [:binary.copy(value) | acc])

  defp values(<<>>, acc), do: :lists.reverse(acc)

  defp cstring(body), do: body |> :binary.split(<<0>>) |> hd()

  defp error(body) do
    fields =
      for <<code, _::binary>> = field <- :binary.split(body, <<0>>, [:global]),
          code != 0,
          into: %{},
          do: {code, binary_part(field, 1, byte_size(field) - 1)}

    %Error{
      severity: Map.get(fields, ?V, Map.get(fields, ?S)),
      code: fields[?C],
      message: "#{fields[?S]} #{fields[?C]}: #{fields[?M]}",
      detail: fields[?D]
    }
  end
end
