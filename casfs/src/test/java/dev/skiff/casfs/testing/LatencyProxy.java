package dev.skiff.casfs.testing;

import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.util.ReferenceCountUtil;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * A TCP proxy that makes a loopback connection look like a network link: every byte is delivered
 * {@code delay} later in each direction (so a request-response costs one RTT of 2 x delay), a new
 * connection costs one extra RTT before its first byte gets through (the TCP handshake; no TLS),
 * and each direction of the link is capped at {@code bytesPerSecond} (0: no cap), shared by all
 * connections as on one network link. Reading stops while more than 4 MiB wait on a connection, so
 * a fast sender is slowed, not buffered.
 *
 * <p>This machine has no {@code tc netem}; tests and benchmarks put this between Skiff and the S3
 * server. {@code java -cp ... dev.skiff.casfs.testing.LatencyProxy LISTEN_PORT TARGET_HOST:PORT
 * DELAY_MS MBPS} runs one by hand.
 */
public final class LatencyProxy implements AutoCloseable {
  private static final long HIGH_WATER = 4L << 20;
  private static final long LOW_WATER = 1L << 20;

  private final EventLoopGroup group = new NioEventLoopGroup(1);
  private final Channel server;
  private final long delayNanos;
  private final long bytesPerSecond;
  // When the emulated link finishes sending what is queued, per direction; touched only on the
  // proxy's single event loop thread.
  private long upFreeAt;
  private long downFreeAt;

  private LatencyProxy(
      InetSocketAddress listen, InetSocketAddress target, Duration delay, long bytesPerSecond)
      throws InterruptedException {
    this.delayNanos = delay.toNanos();
    this.bytesPerSecond = bytesPerSecond;
    ServerBootstrap b =
        new ServerBootstrap()
            .group(group)
            .channel(NioServerSocketChannel.class)
            .childOption(ChannelOption.AUTO_READ, false)
            .childOption(ChannelOption.TCP_NODELAY, true)
            .childHandler(
                new ChannelInitializer<SocketChannel>() {
                  @Override
                  protected void initChannel(SocketChannel inbound) {
                    inbound.pipeline().addLast(new Accept(target));
                  }
                });
    server = b.bind(listen).sync().channel();
  }

  /** Starts a proxy on a free loopback port in front of {@code target}. */
  public static LatencyProxy start(
      InetSocketAddress target, Duration oneWayDelay, long bytesPerSecond)
      throws InterruptedException {
    return new LatencyProxy(
        new InetSocketAddress("127.0.0.1", 0), target, oneWayDelay, bytesPerSecond);
  }

  public int port() {
    return ((InetSocketAddress) server.localAddress()).getPort();
  }

  /** Connects the accepted connection to the target one RTT later, then relays both ways. */
  private final class Accept extends ChannelInboundHandlerAdapter {
    private final InetSocketAddress target;

    Accept(InetSocketAddress target) {
      this.target = target;
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
      Channel inbound = ctx.channel();
      inbound
          .eventLoop()
          .schedule(
              () -> {
                Bootstrap b =
                    new Bootstrap()
                        .group(inbound.eventLoop())
                        .channel(NioSocketChannel.class)
                        .option(ChannelOption.AUTO_READ, false)
                        .option(ChannelOption.TCP_NODELAY, true)
                        .handler(new ChannelInboundHandlerAdapter());
                ChannelFuture f = b.connect(target);
                f.addListener(
                    done -> {
                      if (!done.isSuccess()) {
                        inbound.close();
                        return;
                      }
                      Channel outbound = f.channel();
                      inbound.pipeline().remove(Accept.this);
                      inbound.pipeline().addLast(new Relay(outbound, true));
                      outbound.pipeline().addLast(new Relay(inbound, false));
                      inbound.read();
                      outbound.read();
                    });
              },
              2 * delayNanos,
              TimeUnit.NANOSECONDS);
    }
  }

  /**
   * Forwards what one side reads to the other, late and paced. Delivery order is kept by a queue of
   * its own, drained by one scheduled task at a time (scheduled tasks with close deadlines may run
   * in either order).
   */
  private final class Relay extends ChannelInboundHandlerAdapter {
    private final Channel peer;
    private final boolean up;
    private final java.util.ArrayDeque<Object[]> pending = new java.util.ArrayDeque<>();
    private boolean drainScheduled;
    private long lastDelivery;
    private long queued;
    private Channel self;

    Relay(Channel peer, boolean up) {
      this.peer = peer;
      this.up = up;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      self = ctx.channel();
      ByteBuf buf = (ByteBuf) msg;
      int n = buf.readableBytes();
      long now = System.nanoTime();
      long start = Math.max(now, up ? upFreeAt : downFreeAt);
      long sendTime = bytesPerSecond > 0 ? n * 1_000_000_000L / bytesPerSecond : 0;
      long sent = start + sendTime;
      if (up) {
        upFreeAt = sent;
      } else {
        downFreeAt = sent;
      }
      long deliverAt = Math.max(sent + delayNanos, lastDelivery);
      lastDelivery = deliverAt;
      queued += n;
      pending.addLast(new Object[] {deliverAt, buf});
      scheduleDrain(now);
      if (queued < HIGH_WATER) {
        self.read();
      }
    }

    private void scheduleDrain(long now) {
      if (drainScheduled || pending.isEmpty()) {
        return;
      }
      drainScheduled = true;
      long at = (Long) pending.peekFirst()[0];
      self.eventLoop().schedule(this::drain, Math.max(0, at - now), TimeUnit.NANOSECONDS);
    }

    private void drain() {
      drainScheduled = false;
      long now = System.nanoTime();
      boolean wrote = false;
      while (!pending.isEmpty() && (Long) pending.peekFirst()[0] <= now) {
        ByteBuf buf = (ByteBuf) pending.pollFirst()[1];
        queued -= buf.readableBytes();
        if (peer.isActive()) {
          peer.write(buf);
          wrote = true;
        } else {
          ReferenceCountUtil.release(buf);
        }
      }
      if (wrote) {
        peer.flush();
      }
      if (queued < LOW_WATER && self.isActive()) {
        self.read();
      }
      scheduleDrain(now);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      long wait = Math.max(0, lastDelivery - System.nanoTime());
      ctx.channel()
          .eventLoop()
          .schedule(
              () -> {
                if (peer.isActive()) {
                  peer.close();
                }
              },
              wait + 1_000_000,
              TimeUnit.NANOSECONDS);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      ctx.close();
    }
  }

  @Override
  public void close() {
    server.close().syncUninterruptibly();
    group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
  }

  public static void main(String[] args) throws Exception {
    String[] t = args[1].split(":");
    try (LatencyProxy p =
        new LatencyProxy(
            new InetSocketAddress("127.0.0.1", Integer.parseInt(args[0])),
            new InetSocketAddress(t[0], Integer.parseInt(t[1])),
            Duration.ofMillis(Long.parseLong(args[2])),
            (long) (Double.parseDouble(args[3]) * 1e6 / 8))) {
      System.out.println("proxy on 127.0.0.1:" + p.port() + " -> " + args[1]);
      Thread.currentThread().join();
    }
  }
}
