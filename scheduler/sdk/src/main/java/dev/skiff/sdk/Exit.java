package dev.skiff.sdk;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * Marks a method of a function's class that runs once when its container shuts down (scaled down,
 * redeployed, its app stopped), like Modal's {@code @exit}. It takes no arguments; a failure is
 * logged, not reported to any call.
 */
@Retention(RetentionPolicy.RUNTIME)
@Target(ElementType.METHOD)
public @interface Exit {}
