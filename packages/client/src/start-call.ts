// What a look-aside router's direct connections use of a Client: send one prepared call,
// and the channel's state. Symbols, so they can never shadow a remote function's name on
// the transparent proxy.
export const START_CALL: unique symbol = Symbol('easyremote.startCall');
export const CLIENT_CHANNEL: unique symbol = Symbol('easyremote.channel');
