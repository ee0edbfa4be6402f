/* Value formatting by unit system (dashboards.md §4): time input is ns (`seconds` input is s, e.g. a Prometheus
   `_seconds` gauge); bytes step by 1024; the rates and counts by 1000 with k/M/G (a bare "B" would read as
   bytes); percentage data is a 0–1 fraction. Two decimals at most, trailing zeros dropped. */
(function (R) {
  'use strict';
  var SYSTEMS = {
    time: { base: 1000, steps: ['ns', 'µs', 'ms', 's'], sep: ' ' },
    bytes: { base: 1024, steps: ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'], sep: ' ' },
    bitrate: { base: 1000, steps: ['bps', 'Kbps', 'Mbps', 'Gbps', 'Tbps'], sep: ' ' },
    datarate: { base: 1000, steps: ['B/s', 'KB/s', 'MB/s', 'GB/s', 'TB/s'], sep: ' ' },
    frequency: { base: 1000, steps: ['Hz', 'kHz', 'MHz', 'GHz', 'THz'], sep: ' ' },
    count: { base: 1000, steps: ['', 'k', 'M', 'G', 'T'], sep: '' },
    rate: { base: 1000, steps: ['/s', 'k/s', 'M/s', 'G/s', 'T/s'], sep: '' }
  };

  function trim(x, digits) {
    var s = x.toFixed(digits);
    return s.indexOf('.') < 0 ? s : s.replace(/\.?0+$/, '');
  }

  /* Below 1, at least two significant digits (0.015 and 0.01 must not both read "0.01"). */
  function number(x, digits) {
    var a = Math.abs(x);
    if (a !== 0 && a < 1e-6) return x.toExponential(1);
    if (a !== 0 && a < 1) digits = Math.max(digits, 1 - Math.floor(Math.log10(a)));
    return trim(x, a >= 100 ? Math.min(digits, 1) : digits);
  }

  /* format(unit, value [, digits]) -> text; null/NaN -> "—". Time beyond a minute stays in seconds. */
  function format(unit, value, digits) {
    if (value === null || value === undefined || typeof value !== 'number' || !isFinite(value)) return '—';
    digits = digits === undefined ? 2 : digits;
    if (unit === 'percentage') return number(value * 100, digits) + '%';
    if (unit === 'seconds') return format('time', value * 1e9, digits);
    var sys = SYSTEMS[unit] || SYSTEMS.count;
    var v = value, i = 0, a = Math.abs(value);
    while (a >= sys.base && i < sys.steps.length - 1) { a /= sys.base; v /= sys.base; i += 1; }
    if (unit === 'rate' && i === 0) return number(v, digits) + '/s';
    var suffix = sys.steps[i];
    return number(v, digits) + (suffix ? sys.sep + suffix : '');
  }

  /* An axis label formatter: fewer digits, no exponent for zero. */
  function axis(unit) {
    return function (value) { return value === 0 ? '0' : format(unit, value, 2); };
  }

  var pad = function (n) { return n < 10 ? '0' + n : String(n); };

  /* Local wall-clock time of a unix-ms instant: "HH:MM:SS", or with the date when `withDate`. */
  function time(ms, withDate) {
    var d = new Date(ms);
    var hms = pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
    if (!withDate) return hms;
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + hms;
  }

  /* A span of milliseconds: "45 s", "3 min 20 s", "2 h 5 min", "1 d 3 h". */
  function duration(ms) {
    var s = Math.round(ms / 1000);
    if (s < 60) return s + ' s';
    var m = Math.floor(s / 60); s %= 60;
    if (m < 60) return m + ' min' + (s ? ' ' + s + ' s' : '');
    var h = Math.floor(m / 60); m %= 60;
    if (h < 24) return h + ' h' + (m ? ' ' + m + ' min' : '');
    var d = Math.floor(h / 24); h %= 24;
    return d + ' d' + (h ? ' ' + h + ' h' : '');
  }

  R.units = { format: format, axis: axis, time: time, duration: duration, systems: Object.keys(SYSTEMS) };
})(window.REZGEN = window.REZGEN || {});
