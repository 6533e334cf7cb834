package dev.skiff.tools;

import dev.skiff.scheduler.client.TokenFile;
import dev.skiff.scheduler.control.SchedulerServer;
import dev.skiff.scheduler.state.ControlState;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
    name = "scheduler",
    mixinStandardHelpOptions = true,
    description = {
      "Run the scheduler alone; workers on each host attach to it with skiff worker.",
      "Its client and worker tokens are in HOME/control/tokens.json (made on the first start, owner-only)."
    })
final class SchedulerCommand implements Callable<Integer> {
  @Mixin SkiffCli.StoreOptions store;

  @Option(
      names = "--listen",
      defaultValue = "127.0.0.1:7420",
      paramLabel = "HOST:PORT",
      description =
          "where clients and workers connect (default ${DEFAULT-VALUE}; 0.0.0.0:7420 for other hosts)")
  String listen;

  @Option(
      names = "--state",
      paramLabel = "DIR|postgresql://...",
      description =
          "where calls and functions are kept: a directory (default HOME/control/state) or a PostgreSQL database")
  String state;

  @Option(
      names = "--data",
      paramLabel = "DIR",
      description =
          "where inputs and outputs over 2 MiB (kept a day) and the functions' logs are kept (default"
              + " HOME/control); with a PostgreSQL --state they are kept in its database, where a"
              + " standby finds them")
  Path data;

  @Option(
      names = "--tls-cert",
      paramLabel = "PEM",
      description = "serve TLS with this certificate chain (with --tls-key)")
  Path cert;

  @Option(
      names = "--tls-key",
      paramLabel = "PEM",
      description = "the certificate's private key (PKCS#8)")
  Path key;

  @Override
  public Integer call() throws Exception {
    if ((cert == null) != (key == null)) {
      throw new IllegalArgumentException("give both --tls-cert and --tls-key, or neither");
    }
    Path home = store.home();
    TokenFile tokens = TokenFile.loadOrCreate(home);
    ControlState s = Daemons.openState(state, home);
    if (s instanceof dev.skiff.scheduler.state.PostgresControlState pg) {
      System.out.println(
          "skiff scheduler: waiting to lead (another scheduler on this database leads until it stops)");
      System.out.flush();
      pg.awaitLeadership();
    }
    SchedulerServer server;
    try {
      server =
          SchedulerServer.start(
              s,
              new SchedulerServer.Options(
                  Daemons.address(listen),
                  tokens.client(),
                  tokens.worker(),
                  cert,
                  key,
                  Daemons.data(data, home)));
    } catch (Exception e) {
      s.close();
      throw e;
    }
    System.out.printf(
        "skiff scheduler: listening on %s:%d%s; tokens in %s%n",
        listen.substring(0, listen.lastIndexOf(':')),
        server.port(),
        cert == null ? "" : " (TLS)",
        TokenFile.path(home));
    System.out.flush();
    Daemons.runUntilStopped(() -> Daemons.closeAll(server, s));
    return 0;
  }
}
