package dev.skiff.sdk;

import java.io.Serializable;
import java.lang.invoke.MethodHandleInfo;
import java.lang.invoke.MethodType;
import java.lang.invoke.SerializedLambda;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.Type;
import java.util.Arrays;

/** The method a handler's method reference names: its class, name, and declared types. */
record MethodRef(Class<?> owner, Method method, boolean onInstance) {

  /**
   * Reads the method {@code handler} refers to; refuses lambdas and methods a runner cannot call.
   */
  static MethodRef of(Serializable handler) {
    SerializedLambda l;
    try {
      Method writeReplace = handler.getClass().getDeclaredMethod("writeReplace");
      writeReplace.setAccessible(true);
      l = (SerializedLambda) writeReplace.invoke(handler);
    } catch (ReflectiveOperationException | ClassCastException e) {
      throw new IllegalArgumentException(
          "a handler must be a method reference (Square::apply), not an object of "
              + handler.getClass().getName());
    }
    String name = l.getImplMethodName();
    if (name.startsWith("lambda$")) {
      throw new IllegalArgumentException(
          "a handler must be a method reference to a named method (Square::apply), not a lambda:"
              + " the container calls the method by its name");
    }
    if (l.getCapturedArgCount() > 0) {
      throw new IllegalArgumentException(
          "a handler must not capture an object (object::method): name the class"
              + " (Embedder::embed), and each container makes its own instance");
    }
    ClassLoader loader = handler.getClass().getClassLoader();
    Class<?> owner;
    try {
      owner = Class.forName(l.getImplClass().replace('/', '.'), false, loader);
    } catch (ClassNotFoundException e) {
      throw new IllegalArgumentException("cannot load the handler's class: " + e.getMessage());
    }
    MethodType type = MethodType.fromMethodDescriptorString(l.getImplMethodSignature(), loader);
    Method method =
        Arrays.stream(owner.getDeclaredMethods())
            .filter(
                m ->
                    m.getName().equals(name)
                        && Arrays.equals(m.getParameterTypes(), type.parameterArray()))
            .findFirst()
            .orElseThrow(
                () -> new IllegalArgumentException("no method " + name + " in " + owner.getName()));
    boolean onInstance = l.getImplMethodKind() != MethodHandleInfo.REF_invokeStatic;
    if (owner.isAnonymousClass() || owner.isLocalClass() || owner.isHidden()) {
      throw new IllegalArgumentException(
          owner.getName() + " is not a named class: a container cannot load it by name");
    }
    if (owner.getEnclosingClass() != null && !Modifier.isStatic(owner.getModifiers())) {
      throw new IllegalArgumentException(
          owner.getName() + " is an inner class: make it static, so a container can make one");
    }
    long sameName =
        Arrays.stream(owner.getDeclaredMethods())
            .filter(m -> m.getName().equals(name) && !m.isSynthetic() && !m.isBridge())
            .count();
    if (sameName > 1) {
      throw new IllegalArgumentException(
          owner.getName()
              + " has "
              + sameName
              + " methods named "
              + name
              + ": a function's method must be the only one of its name");
    }
    if (onInstance) {
      try {
        owner.getDeclaredConstructor();
      } catch (NoSuchMethodException e) {
        throw new IllegalArgumentException(
            owner.getName()
                + " has no constructor without arguments: a container makes its instance with one");
      }
    }
    return new MethodRef(owner, method, onInstance);
  }

  /** The handler as the control plane names it: CLASS::METHOD, or CLASS#METHOD on an instance. */
  String handler() {
    return owner.getName() + (onInstance ? "#" : "::") + method.getName();
  }

  /** The declared type of the method's result, generics included. */
  Type resultType() {
    return method.getGenericReturnType();
  }

  /**
   * A function name made of the class's and the method's: {@code Square::apply} is square-apply.
   */
  String defaultName() {
    return kebab(owner.getSimpleName()) + "-" + kebab(method.getName());
  }

  private static String kebab(String camel) {
    return camel
        .replaceAll("([a-z0-9])([A-Z])", "$1-$2")
        .replaceAll("([A-Z])([A-Z][a-z])", "$1-$2")
        .replace('$', '-')
        .toLowerCase(java.util.Locale.ROOT);
  }
}
