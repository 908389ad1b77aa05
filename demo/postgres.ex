defmodule LsmIndex.Demo.Postgres do
  @moduledoc """
  A throwaway PostgreSQL cluster for the end-to-end demo and the differential tests (not
  public API): `start/1` runs `initdb` and `pg_ctl start` in a fresh temporary directory,
  `query/2` runs SQL through one `psql` process, `psql/2` gives the command line of a `psql`
  session (`LsmIndex.Demo.Psql` keeps one open), `stop/1` stops the server and deletes the
  directory.

  The cluster: a UTF-8 database with the `C` collation and `C.utf8` character classes (case
  folding of non-ASCII letters, as a production database would do it), no TCP
  (`listen_addresses = ''`), its unix socket in the temporary directory, `fsync` off,
  `TimeZone = UTC`, `DateStyle = ISO`. Option `logical: true` adds `wal_level = logical`
  (logical replication slots, max 4; the demo streams one with `pgoutput`) and
  `shared_buffers: "128MB"` sets the buffer pool (default 32MB).
  `initdb` refuses to run as root, so as root every program runs as the `postgres` OS user
  (`runuser -u postgres --`); otherwise as the current user.

  A VM killed outright (SIGKILL) cannot stop its cluster: each cluster directory names its
  owner's OS pid (`owner`), and `start/0` first stops and deletes the clusters whose owner is
  gone.

  The programs are found through `pg_config --bindir`, then `/usr/lib/postgresql/*/bin`
  (newest first), then `PATH`. Without them `start/0` raises: `./run test` installs Debian's
  `postgresql` package.
  """

  defstruct [:dir, :data, :bin, :as_user]

  @typedoc "A running cluster."
  @type t :: %__MODULE__{dir: Path.t(), data: Path.t(), bin: Path.t(), as_user: String.t() | nil}

  @doc """
  Starts a cluster (raises with the reason when it cannot). Options: `logical` (default
  `false`), `shared_buffers` (default `"32MB"`).
  """
  @spec start(keyword()) :: t()
  def start(opts \\ []) do
    opts = Keyword.validate!(opts, logical: false, shared_buffers: "32MB")
    bin = bindir!()
    as_user = os_user!()
    reap_orphans(bin, as_user)
    # the OS pid too: two VMs (two test runs side by side) count unique integers alike
    dir =
      Path.join(System.tmp_dir!(), "lsm_pg_#{System.pid()}_#{System.unique_integer([:positive])}")

    File.mkdir_p!(dir)
    File.write!(Path.join(dir, "owner"), System.pid())
    pg = %__MODULE__{dir: dir, data: Path.join(dir, "data"), bin: bin, as_user: as_user}

    try do
      File.chmod!(dir, 0o700)
      if as_user, do: run!("chown", [as_user, dir], nil)

      run!(
        Path.join(bin, "initdb"),
        ~w(-D #{pg.data} --no-sync -A trust -U postgres --encoding=UTF8 --locale=C
           --lc-ctype=C.utf8),
        as_user
      )

      options =
        "-c listen_addresses='' -c unix_socket_directories=#{dir} -c fsync=off " <>
          "-c full_page_writes=off -c TimeZone=UTC -c DateStyle=ISO " <>
          "-c shared_buffers=#{opts[:shared_buffers]} -c max_connections=10" <>
          if(opts[:logical], do: " -c wal_level=logical -c max_replication_slots=4", else: "")

      run!(
        Path.join(bin, "pg_ctl"),
        ["-D", pg.data, "-o", options, "-l", Path.join(dir, "server.log"), "-w", "start"],
        as_user
      )

      pg
    rescue
      e ->
        stop(pg)
        reraise e, __STACKTRACE__
    end
  end

  # Stops and deletes the clusters of VMs that died without stopping them.
  defp reap_orphans(bin, as_user) do
    for dir <- Path.wildcard(Path.join(System.tmp_dir!(), "lsm_pg_*")),
        {:ok, owner} <- [File.read(Path.join(dir, "owner"))],
        not File.exists?("/proc/#{String.trim(owner)}") do
      stop(%__MODULE__{dir: dir, data: Path.join(dir, "data"), bin: bin, as_user: as_user})
    end
  end

  @doc """
  The cluster of directory `dir` that another VM started (the demo's driver runs as a child
  of the test VM that owns the cluster).
  """
  @spec attach(Path.t()) :: t()
  def attach(dir) do
    %__MODULE__{dir: dir, data: Path.join(dir, "data"), bin: bindir!(), as_user: os_user!()}
  end

  @doc "Stops the cluster and deletes its directory (again: nothing happens)."
  @spec stop(t()) :: :ok
  def stop(%__MODULE__{dir: dir, data: data, bin: bin, as_user: as_user}) do
    try do
      if File.exists?(Path.join(data, "postmaster.pid")) do
        cmd(Path.join(bin, "pg_ctl"), ["-D", data, "-m", "fast", "-w", "stop"], as_user)
      end
    after
      File.rm_rf!(dir)
    end

    :ok
  end

  @doc """
  Runs `sql` (any number of statements, `COPY … FROM STDIN` data included) through one
  `psql -X -At -v ON_ERROR_STOP=1` and returns its standard output; raises on an error.
  """
  @spec query(t(), iodata()) :: String.t()
  def query(%__MODULE__{} = pg, sql, database \\ "postgres") do
    file = Path.join(pg.dir, "query_#{System.unique_integer([:positive])}.sql")
    File.write!(file, ["SET client_min_messages = warning;\n", sql])

    try do
      run!(
        Path.join(pg.bin, "psql"),
        ~w(-h #{pg.dir} -U postgres -d #{database} -X -At -q -v ON_ERROR_STOP=1 -f #{file}),
        pg.as_user
      )
    after
      File.rm(file)
    end
  end

  @doc """
  The program and arguments of a `psql` session on `database` reading SQL from its standard
  input: no psqlrc, unaligned tuples only, quiet, stopping at the first error.
  """
  @spec psql(t(), String.t()) :: {String.t(), [String.t()]}
  def psql(%__MODULE__{} = pg, database \\ "postgres") do
    args = ~w(-h #{pg.dir} -U postgres -d #{database} -X -A -t -q -v ON_ERROR_STOP=1)
    program = Path.join(pg.bin, "psql")

    case pg.as_user do
      nil -> {program, args}
      user -> {System.find_executable("runuser"), ["-u", user, "--", program | args]}
    end
  end

  @doc "A value as a field of `COPY`'s text format (`nil` is `\\N`)."
  @spec copy_field(String.t() | nil) :: String.t()
  def copy_field(nil), do: "\\N"

  def copy_field(text) do
    text
    |> String.replace("\\", "\\\\")
    |> String.replace("\t", "\\t")
    |> String.replace("\n", "\\n")
    |> String.replace("\r", "\\r")
  end

  @doc "The fields of one line of `COPY … TO STDOUT` text output (`\\N` is `nil`)."
  @spec copy_fields(String.t()) :: [String.t() | nil]
  def copy_fields(line), do: line |> String.split("\t") |> Enum.map(&unescape/1)

  defp unescape("\\N"), do: nil
  defp unescape(field), do: unescape(field, "")

  defp unescape(<<?\\, c, rest::binary>>, acc) do
    char =
      case c do
        ?t -> "\t"
        ?n -> "\n"
        ?r -> "\r"
        ?b -> "\b"
        ?f -> "\f"
        ?v -> "\v"
        other -> <<other>>
      end

    unescape(rest, acc <> char)
  end

  defp unescape(<<c, rest::binary>>, acc), do: unescape(rest, <<acc::binary, c>>)
  defp unescape(<<>>, acc), do: acc

  # The folder of initdb, pg_ctl and psql.
  defp bindir! do
    from_pg_config =
      case System.find_executable("pg_config") && System.cmd("pg_config", ["--bindir"]) do
        {out, 0} -> [String.trim(out)]
        _ -> []
      end

    debian =
      "/usr/lib/postgresql/*/bin"
      |> Path.wildcard()
      |> Enum.sort_by(&(&1 |> Path.dirname() |> Path.basename() |> version()), :desc)

    on_path =
      case System.find_executable("initdb") do
        nil -> []
        initdb -> [initdb |> Path.expand() |> resolve() |> Path.dirname()]
      end

    Enum.find(from_pg_config ++ debian ++ on_path, fn dir ->
      Enum.all?(~w(initdb pg_ctl psql), &File.exists?(Path.join(dir, &1)))
    end) ||
      raise """
      PostgreSQL was not found (no initdb, pg_ctl and psql in `pg_config --bindir`, \
      /usr/lib/postgresql/*/bin or PATH): the PostgreSQL oracle test and the demo need it. \
      `./run test` and `./run demo` install it (apt-get install postgresql).
      """
  end

  defp version(name) do
    case Integer.parse(name) do
      {v, _} -> v
      :error -> 0
    end
  end

  defp resolve(path) do
    case File.read_link(path) do
      {:ok, target} -> target |> Path.expand(Path.dirname(path)) |> resolve()
      {:error, _} -> path
    end
  end

  # As root: the `postgres` OS user (initdb refuses root); otherwise nobody else.
  defp os_user! do
    {uid, 0} = System.cmd("id", ["-u"])

    cond do
      String.trim(uid) != "0" ->
        nil

      match?({_, 0}, System.cmd("id", ["-u", "postgres"], stderr_to_stdout: true)) ->
        "postgres"

      true ->
        raise "running as root without a `postgres` OS user: initdb refuses to run as root"
    end
  end

  defp run!(program, args, as_user) do
    case cmd(program, args, as_user) do
      {out, 0} ->
        out

      {out, status} ->
        raise "#{Path.basename(program)} #{Enum.join(args, " ")} failed (exit #{status}):\n#{out}"
    end
  end

  defp cmd(program, args, nil), do: System.cmd(program, args, stderr_to_stdout: true)

  defp cmd(program, args, user),
    do: System.cmd("runuser", ["-u", user, "--", program | args], stderr_to_stdout: true)
end
