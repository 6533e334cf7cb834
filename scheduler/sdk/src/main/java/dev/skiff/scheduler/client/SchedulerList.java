package dev.skiff.scheduler.client;

import io.grpc.EquivalentAddressGroup;
import io.grpc.NameResolver;
import io.grpc.NameResolverProvider;
import io.grpc.NameResolverRegistry;
import io.grpc.Status;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.URI;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Set;

/**
 * Several schedulers as one target, {@code HOST:PORT,HOST:PORT}: a leader and its standbys on one
 * PostgreSQL state. A channel to the list connects to the first that answers, in order (a standby
 * does not listen until it leads), and when its connection breaks it tries the list again, so
 * clients and workers follow a takeover by themselves. Hosts are looked up again at each try.
 */
final class SchedulerList extends NameResolverProvider {
  static final String SCHEME = "skiff-list";
  private static final SchedulerList INSTANCE = new SchedulerList();

  static {
    NameResolverRegistry.getDefaultRegistry().register(INSTANCE);
  }

  private SchedulerList() {}

  /** The channel target for {@code target}: a list becomes a {@code skiff-list} target. */
  static String channelTarget(String target) {
    return target.contains(",") ? SCHEME + ":///" + target.replace(" ", "") : target;
  }

  /** HOST:PORT, [V6]:PORT. */
  static InetSocketAddress parse(String hostPort) {
    int colon = hostPort.lastIndexOf(':');
    if (colon <= 0 || colon == hostPort.length() - 1) {
      throw new IllegalArgumentException(
          "not HOST:PORT: '" + hostPort + "' (a list of schedulers is HOST:PORT,HOST:PORT)");
    }
    String host = hostPort.substring(0, colon);
    if (host.startsWith("[") && host.endsWith("]")) {
      host = host.substring(1, host.length() - 1);
    }
    return new InetSocketAddress(host, Integer.parseInt(hostPort.substring(colon + 1)));
  }

  @Override
  protected boolean isAvailable() {
    return true;
  }

  @Override
  protected int priority() {
    return 5;
  }

  @Override
  public String getDefaultScheme() {
    return SCHEME;
  }

  @Override
  public Collection<Class<? extends SocketAddress>> getProducedSocketAddressTypes() {
    return Set.of(InetSocketAddress.class);
  }

  @Override
  public NameResolver newNameResolver(URI uri, NameResolver.Args args) {
    if (!SCHEME.equals(uri.getScheme())) {
      return null;
    }
    List<String> entries = List.of(uri.getPath().substring(1).split(","));
    return new NameResolver() {
      private Listener2 listener;

      @Override
      public String getServiceAuthority() {
        return entries.get(0); // TLS: the certificate must name the first (and, to verify, all)
      }

      @Override
      public void start(Listener2 l) {
        listener = l;
        resolve();
      }

      @Override
      public void refresh() {
        resolve();
      }

      private void resolve() {
        List<EquivalentAddressGroup> groups = new ArrayList<>();
        for (String e : entries) {
          try {
            InetSocketAddress a = parse(e);
            if (!a.isUnresolved()) {
              groups.add(new EquivalentAddressGroup(a));
            }
          } catch (IllegalArgumentException ignored) {
            // a malformed entry was refused when the target was made
          }
        }
        if (groups.isEmpty()) {
          listener.onError(
              Status.UNAVAILABLE.withDescription("no scheduler of " + entries + " resolves"));
        } else {
          listener.onResult(ResolutionResult.newBuilder().setAddresses(groups).build());
        }
      }

      @Override
      public void shutdown() {}
    };
  }
}
