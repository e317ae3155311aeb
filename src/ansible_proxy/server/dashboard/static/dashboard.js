// Reload the page every 15 s while the footer's box is ticked and nobody is typing in a form.
setInterval(function () {
  var box = document.getElementById("auto-refresh");
  var typing = document.activeElement && document.activeElement.form;
  if (box && box.checked && !typing && document.visibilityState === "visible") {
    location.reload();
  }
}, 15000);
